import Foundation
import Glibc

/// Plain TCP sockets on 127.0.0.1: free ports for servers, and traffic curl will not send (garbage,
/// half a request).
public enum Loopback {
  /// A port nothing listens on now: the kernel picks one for a socket that is then closed.
  public static func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = loopbackAddress(port: 0)
    _ = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
      }
    }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
  }

  /// A connected socket with a 2 s receive timeout, or nil when nothing accepts on `port`.
  public static func connect(port: Int) -> Int32? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    var address = loopbackAddress(port: port)
    let status = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
      }
    }
    guard status == 0 else {
      close(fd)
      return nil
    }
    var timeout = timeval(tv_sec: 2, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    return fd
  }

  public static func canConnect(port: Int) -> Bool {
    guard let fd = connect(port: port) else { return false }
    close(fd)
    return true
  }

  /// Sends `bytes`, then reads until the peer closes or 2 s pass, then closes.
  public static func send(_ bytes: [UInt8], port: Int, readReply: Bool = true) {
    guard let fd = connect(port: port) else { return }
    defer { close(fd) }
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    guard readReply else { return }
    var buffer = [UInt8](repeating: 0, count: 4096)
    while read(fd, &buffer, buffer.count) > 0 {}
  }

  private static func loopbackAddress(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    return address
  }
}
