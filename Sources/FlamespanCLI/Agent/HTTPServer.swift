import Foundation
import Glibc

struct HTTPRequest: Sendable {
  var method: String
  var path: String
  var query: [String: String]
}

struct HTTPServerResponse: Sendable {
  var status: Int
  var contentType: String
  var body: [UInt8]

  static func text(_ status: Int, _ text: String) -> HTTPServerResponse {
    HTTPServerResponse(
      status: status, contentType: "text/plain; charset=utf-8", body: Array(text.utf8))
  }

  static func json(_ text: String) -> HTTPServerResponse {
    HTTPServerResponse(status: 200, contentType: "application/json", body: Array(text.utf8))
  }
}

struct HTTPServerError: Error, CustomStringConvertible {
  var address: String
  var errno: Int32
  var message: String
  var description: String { "\(message) \(address): \(String(cString: strerror(errno)))" }
}

/// A small HTTP/1.1 server for the UI and API: GET only, one request per connection, a thread per
/// connection with a fixed cap (past it new connections get 503), and short socket timeouts so a stuck
/// client cannot pin a thread.
final class HTTPServer: @unchecked Sendable {
  static let maximumConnections = 8
  private let listenFD: Int32
  private let handler: @Sendable (HTTPRequest) -> HTTPServerResponse
  private let lock = NSLock()
  private var active = 0
  private var stopped = false
  let boundPort: UInt16

  /// `address` is "host:port"; the host must be an IPv4 or IPv6 literal ("127.0.0.1", "[::1]").
  init(address: String, handler: @escaping @Sendable (HTTPRequest) -> HTTPServerResponse)
    throws(HTTPServerError)
  {
    self.handler = handler
    guard let colon = address.lastIndex(of: ":"),
      let port = UInt16(address[address.index(after: colon)...])
    else {
      throw HTTPServerError(address: address, errno: EINVAL, message: "expected host:port in")
    }
    var host = String(address[..<colon])
    if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    let isIPv6 = host.contains(":")
    let fd = socket(
      isIPv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else {
      throw HTTPServerError(address: address, errno: errno, message: "cannot open a socket for")
    }
    var yes: Int32 = 1
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
    var bound: Int32
    if isIPv6 {
      var socketAddress = sockaddr_in6()
      socketAddress.sin6_family = sa_family_t(AF_INET6)
      socketAddress.sin6_port = port.bigEndian
      guard inet_pton(AF_INET6, host, &socketAddress.sin6_addr) == 1 else {
        close(fd)
        throw HTTPServerError(address: address, errno: EINVAL, message: "not an IPv6 address:")
      }
      bound = withUnsafePointer(to: &socketAddress) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
          bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
        }
      }
    } else {
      var socketAddress = sockaddr_in()
      socketAddress.sin_family = sa_family_t(AF_INET)
      socketAddress.sin_port = port.bigEndian
      guard inet_pton(AF_INET, host, &socketAddress.sin_addr) == 1 else {
        close(fd)
        throw HTTPServerError(address: address, errno: EINVAL, message: "not an IPv4 address:")
      }
      bound = withUnsafePointer(to: &socketAddress) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
          bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
      }
    }
    guard bound == 0, listen(fd, 16) == 0 else {
      let code = errno
      close(fd)
      throw HTTPServerError(address: address, errno: code, message: "cannot listen on")
    }
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    _ = withUnsafeMutablePointer(to: &storage) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    boundPort = withUnsafePointer(to: &storage) {
      $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
        UInt16(bigEndian: $0.pointee.sin_port)
      }
    }
    listenFD = fd
  }

  func start() {
    let thread = Thread { [self] in acceptLoop() }
    thread.name = "flamespan-http"
    thread.start()
  }

  func stop() {
    lock.withLock { stopped = true }
    shutdown(listenFD, Int32(SHUT_RDWR))
  }

  private func acceptLoop() {
    while true {
      let client = accept(listenFD, nil, nil)
      if client >= 0 { _ = fcntl(client, F_SETFD, FD_CLOEXEC) }
      if client < 0 {
        if errno == EINTR || errno == ECONNABORTED { continue }
        if lock.withLock({ stopped }) {
          close(listenFD)
          return
        }
        usleep(100_000)
        continue
      }
      var timeout = timeval(tv_sec: 5, tv_usec: 0)
      setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
      setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
      let admitted = lock.withLock {
        guard active < Self.maximumConnections else { return false }
        active += 1
        return true
      }
      guard admitted else {
        Self.respond(client, .text(503, "busy\n"))
        close(client)
        continue
      }
      let thread = Thread { [self] in
        serve(client)
        close(client)
        lock.withLock { active -= 1 }
      }
      thread.start()
    }
  }

  private func serve(_ fd: Int32) {
    var data: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while HTTPHead.endOfHead(data) == nil {
      guard data.count < 16384 else {
        return Self.respond(fd, .text(431, "request head too large\n"))
      }
      let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
      if count < 0 && errno == EINTR { continue }
      guard count > 0 else { return }
      data.append(contentsOf: buffer[0..<count])
    }
    let line = String(decoding: data.prefix { $0 != 13 }, as: UTF8.self)
    let parts = line.split(separator: " ")
    guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else {
      return Self.respond(fd, .text(400, "bad request line\n"))
    }
    guard parts[0] == "GET" || parts[0] == "HEAD" else {
      return Self.respond(fd, .text(405, "only GET\n"))
    }
    let target = String(parts[1])
    let pathPart = target.prefix { $0 != "?" }
    var query: [String: String] = [:]
    if let mark = target.firstIndex(of: "?") {
      for pair in target[target.index(after: mark)...].split(separator: "&") {
        let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        let key = String(kv[0]).removingPercentEncoding ?? String(kv[0])
        let value =
          kv.count > 1
          ? (String(kv[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "")
          : ""
        query[key] = value
      }
    }
    let request = HTTPRequest(
      method: String(parts[0]), path: String(pathPart).removingPercentEncoding ?? String(pathPart),
      query: query)
    var response = handler(request)
    if request.method == "HEAD" { response.body = [] }
    Self.respond(fd, response)
  }

  private static func reason(_ status: Int) -> String {
    switch status {
    case 200: return "OK"
    case 400: return "Bad Request"
    case 404: return "Not Found"
    case 405: return "Method Not Allowed"
    case 431: return "Request Header Fields Too Large"
    case 503: return "Service Unavailable"
    default: return "Status"
    }
  }

  private static func respond(_ fd: Int32, _ response: HTTPServerResponse) {
    let head =
      "HTTP/1.1 \(response.status) \(reason(response.status))\r\nContent-Type: \(response.contentType)\r\n"
      + "Content-Length: \(response.body.count)\r\nCache-Control: no-store\r\n"
      + "X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n"
    for part in [Array(head.utf8), response.body] {
      var offset = 0
      while offset < part.count {
        let sent = part.withUnsafeBytes {
          send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
        }
        if sent < 0 && errno == EINTR { continue }
        guard sent > 0 else { return }
        offset += sent
      }
    }
  }
}
