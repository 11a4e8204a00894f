import FlamespanModel
import Foundation
import Glibc

@testable import FlamespanAgent

/// A real HTTP/1.1 server on 127.0.0.1 for the exporter's tests. It keeps connections open between
/// requests (as a collector does), records every request with the connection it came on, and answers
/// each with the status `respond` picks from the request's arrival index and path.
final class LoopbackHTTPServer: @unchecked Sendable {
  struct Received: Sendable {
    var path: String
    /// By lowercased name.
    var headers: [String: String]
    var body: [UInt8]
    /// 1 for the first connection accepted, and so on.
    var connection: Int
    /// CLOCK_MONOTONIC when the whole request had arrived.
    var arrivedNanos: UInt64
  }

  let port: UInt16
  private let listenFD: Int32
  private let respond: @Sendable (_ index: Int, _ path: String) -> Int
  private let condition = NSCondition()
  private var requests: [Received] = []
  private var accepted = 0
  private var openFDs: Set<Int32> = []
  private var stopped = false

  init(respond: @escaping @Sendable (_ index: Int, _ path: String) -> Int = { _, _ in 200 }) throws
  {
    self.respond = respond
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
      }
    }
    guard bound, listen(fd, 16) == 0 else {
      let code = errno
      close(fd)
      throw POSIXError(.init(rawValue: code) ?? .EIO)
    }
    listenFD = fd
    port = UInt16(bigEndian: address.sin_port)
    let thread = Thread { [self] in acceptLoop() }
    thread.start()
  }

  /// The requests received so far, in arrival order.
  var received: [Received] {
    condition.lock()
    defer { condition.unlock() }
    return requests
  }

  var connectionsAccepted: Int {
    condition.lock()
    defer { condition.unlock() }
    return accepted
  }

  /// Waits until `count` requests have arrived or `seconds` pass; returns what arrived.
  func waitForRequests(_ count: Int, seconds: Double) -> [Received] {
    let deadline = Date().addingTimeInterval(seconds)
    condition.lock()
    defer { condition.unlock() }
    while requests.count < count && condition.wait(until: deadline) {}
    return requests
  }

  /// Closes the listening socket and every open connection.
  func stop() {
    condition.lock()
    stopped = true
    let fds = openFDs
    condition.unlock()
    shutdown(listenFD, Int32(SHUT_RDWR))
    for fd in fds { shutdown(fd, Int32(SHUT_RDWR)) }
  }

  deinit {
    stop()
    close(listenFD)
  }

  private func acceptLoop() {
    while true {
      let fd = accept(listenFD, nil, nil)
      if fd < 0 {
        if errno == EINTR { continue }
        return
      }
      condition.lock()
      if stopped {
        condition.unlock()
        close(fd)
        return
      }
      accepted += 1
      let number = accepted
      openFDs.insert(fd)
      condition.unlock()
      let thread = Thread { [self] in serve(fd, connection: number) }
      thread.start()
    }
  }

  private func serve(_ fd: Int32, connection: Int) {
    defer {
      condition.lock()
      openFDs.remove(fd)
      condition.unlock()
      close(fd)
    }
    var buffer: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    func fill() -> Bool {
      let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
      guard count > 0 else { return false }
      buffer.append(contentsOf: chunk[0..<count])
      return true
    }
    while true {
      var headEnd: Int?
      while headEnd == nil {
        headEnd = HTTPHead.endOfHead(buffer)
        if headEnd == nil && !fill() { return }
      }
      let head = String(decoding: buffer[0..<headEnd!], as: UTF8.self)
      let lines = head.components(separatedBy: "\r\n")
      let requestLine = lines[0].split(separator: " ")
      var headers: [String: String] = [:]
      for line in lines.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers[line[..<colon].lowercased()] = line[line.index(after: colon)...]
          .trimmingCharacters(in: .whitespaces)
      }
      let length = Int(headers["content-length"] ?? "0") ?? 0
      while buffer.count < headEnd! + length {
        if !fill() { return }
      }
      let body = Array(buffer[headEnd!..<(headEnd! + length)])
      buffer.removeFirst(headEnd! + length)
      let path = requestLine.count > 1 ? String(requestLine[1]) : ""
      condition.lock()
      let index = requests.count
      condition.unlock()
      let status = respond(index, path)
      condition.lock()
      requests.append(
        Received(
          path: path, headers: headers, body: body, connection: connection,
          arrivedNanos: KernelClock.monotonicNanos()))
      condition.broadcast()
      condition.unlock()
      let answer = Array("HTTP/1.1 \(status) Test\r\nContent-Length: 0\r\n\r\n".utf8)
      guard
        answer.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) })
          == answer.count
      else { return }
      if headers["connection"]?.lowercased() == "close" { return }
    }
  }
}
