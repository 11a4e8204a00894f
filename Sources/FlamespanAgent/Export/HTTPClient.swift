import Foundation
import Glibc

/// Why a request failed, with errno where the system gave one.
struct HTTPClientError: Error, CustomStringConvertible, Sendable {
  enum Code: Sendable, Equatable {
    case badURL
    case resolve
    case connect
    case send
    case receive
    case malformedResponse
  }

  var code: Code
  var errno: Int32
  var url: String
  var message: String

  var description: String {
    let reason = errno != 0 ? ": \(String(cString: strerror(errno)))" : ""
    return "\(url): \(message)\(reason)"
  }
}

/// An `http://host:port/path` URL. TLS is not spoken: the agent sends to a collector on the node or in
/// the cluster, and a TLS-terminating collector (or sidecar) is the place for encryption.
struct HTTPEndpoint: Sendable, Equatable, CustomStringConvertible {
  var host: String
  var port: UInt16
  /// Path and query, starting with "/".
  var target: String

  init(host: String, port: UInt16, target: String) {
    self.host = host
    self.port = port
    self.target = target
  }

  init(parsing url: String) throws(HTTPClientError) {
    guard url.hasPrefix("http://") else {
      throw HTTPClientError(
        code: .badURL, errno: 0, url: url,
        message: url.hasPrefix("https://")
          ? "https is not supported; send to a local collector over http"
          : "expected http://host[:port][/path]")
    }
    let rest = url.dropFirst("http://".count)
    let authority = rest.prefix { $0 != "/" && $0 != "?" }
    var target = String(rest.dropFirst(authority.count))
    if target.isEmpty || target.first == "?" { target = "/" + target }
    var host = String(authority)
    var port: UInt16 = 80
    if authority.hasPrefix("[") {
      guard let close = authority.firstIndex(of: "]") else {
        throw HTTPClientError(code: .badURL, errno: 0, url: url, message: "unclosed [ in host")
      }
      host = String(authority[authority.index(after: authority.startIndex)..<close])
      let after = authority[authority.index(after: close)...]
      if after.hasPrefix(":") {
        guard let parsed = UInt16(after.dropFirst()) else {
          throw HTTPClientError(code: .badURL, errno: 0, url: url, message: "bad port")
        }
        port = parsed
      }
    } else if let colon = authority.lastIndex(of: ":") {
      host = String(authority[..<colon])
      guard let parsed = UInt16(authority[authority.index(after: colon)...]) else {
        throw HTTPClientError(code: .badURL, errno: 0, url: url, message: "bad port")
      }
      port = parsed
    }
    guard !host.isEmpty else {
      throw HTTPClientError(code: .badURL, errno: 0, url: url, message: "no host")
    }
    self.init(host: host, port: port, target: target)
  }

  /// The same server with another path (query kept out).
  func appendingPath(_ suffix: String) -> HTTPEndpoint {
    var base = target
    while base.hasSuffix("/") { base.removeLast() }
    return HTTPEndpoint(host: host, port: port, target: base + suffix)
  }

  var description: String {
    let hostText = host.contains(":") ? "[\(host)]" : host
    return "http://\(hostText):\(port)\(target)"
  }
}

struct HTTPResponse: Sendable {
  var status: Int
  var body: [UInt8]
}

/// A minimal HTTP/1.1 client: one request per connection (`Connection: close`), blocking with timeouts.
/// The agent sends a few requests per interval, so connection reuse would save nothing worth its code.
enum HTTPClient {
  static let maximumResponseBytes = 1 << 20

  static func post(
    _ endpoint: HTTPEndpoint, headers: [(String, String)], body: [UInt8],
    timeoutSeconds: Int = 10
  ) throws(HTTPClientError) -> HTTPResponse {
    let url = endpoint.description
    let fd = try connect(endpoint, timeoutSeconds: timeoutSeconds)
    defer { close(fd) }
    var head = "POST \(endpoint.target) HTTP/1.1\r\n"
    let hostHeader = endpoint.host.contains(":") ? "[\(endpoint.host)]" : endpoint.host
    head += "Host: \(hostHeader):\(endpoint.port)\r\n"
    head += "User-Agent: flamespan-agent\r\nConnection: close\r\n"
    head += "Content-Length: \(body.count)\r\n"
    for (name, value) in headers { head += "\(name): \(value)\r\n" }
    head += "\r\n"
    try sendAll(fd, Array(head.utf8), url: url)
    try sendAll(fd, body, url: url)
    return try readResponse(fd, url: url)
  }

  private static func connect(_ endpoint: HTTPEndpoint, timeoutSeconds: Int) throws(HTTPClientError)
    -> Int32
  {
    var hints = addrinfo()
    hints.ai_family = AF_UNSPEC
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    var list: UnsafeMutablePointer<addrinfo>?
    let status = getaddrinfo(endpoint.host, String(endpoint.port), &hints, &list)
    guard status == 0, let first = list else {
      throw HTTPClientError(
        code: .resolve, errno: 0, url: endpoint.description,
        message: "cannot resolve \(endpoint.host): \(String(cString: gai_strerror(status)))")
    }
    defer { freeaddrinfo(list) }
    var lastErrno: Int32 = 0
    var entry: UnsafeMutablePointer<addrinfo>? = first
    while let current = entry {
      entry = current.pointee.ai_next
      let fd = socket(
        current.pointee.ai_family, current.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), 0)
      if fd < 0 {
        lastErrno = errno
        continue
      }
      var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
      if Glibc.connect(fd, current.pointee.ai_addr, current.pointee.ai_addrlen) == 0 { return fd }
      lastErrno = errno
      close(fd)
    }
    throw HTTPClientError(
      code: .connect, errno: lastErrno, url: endpoint.description, message: "cannot connect")
  }

  private static func sendAll(_ fd: Int32, _ bytes: [UInt8], url: String) throws(HTTPClientError) {
    var offset = 0
    while offset < bytes.count {
      let sent = bytes.withUnsafeBytes {
        send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
      }
      if sent < 0 {
        if errno == EINTR { continue }
        throw HTTPClientError(code: .send, errno: errno, url: url, message: "sending failed")
      }
      offset += sent
    }
  }

  /// Reads until the server closes (we asked it to) or the declared length arrives.
  private static func readResponse(_ fd: Int32, url: String) throws(HTTPClientError) -> HTTPResponse
  {
    var data: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 16384)
    var headerEnd: Int?
    var contentLength: Int?
    while data.count <= maximumResponseBytes {
      let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
      if count < 0 {
        if errno == EINTR { continue }
        throw HTTPClientError(
          code: .receive, errno: errno, url: url, message: "reading the response failed")
      }
      if count == 0 { break }
      data.append(contentsOf: buffer[0..<count])
      if headerEnd == nil, let end = HTTPHead.endOfHead(data) {
        headerEnd = end
        let head = HTTPHead.parseResponseHead(Array(data[0..<end]))
        contentLength = head?.contentLength
      }
      if let headerEnd, let contentLength, data.count >= headerEnd + contentLength { break }
    }
    guard let headerEnd, let head = HTTPHead.parseResponseHead(Array(data[0..<headerEnd])) else {
      throw HTTPClientError(
        code: .malformedResponse, errno: 0, url: url,
        message: data.isEmpty ? "the server closed without answering" : "not an HTTP response")
    }
    return HTTPResponse(status: head.status, body: Array(data[headerEnd...].prefix(64 << 10)))
  }
}

/// Parsing of HTTP/1.x heads, shared by the client and the server.
enum HTTPHead {
  /// Index just past "\r\n\r\n", if present.
  static func endOfHead(_ data: [UInt8]) -> Int? {
    guard data.count >= 4 else { return nil }
    for index in 0...(data.count - 4)
    where data[index] == 13 && data[index + 1] == 10 && data[index + 2] == 13
      && data[index + 3] == 10
    {
      return index + 4
    }
    return nil
  }

  static func parseResponseHead(_ head: [UInt8]) -> (status: Int, contentLength: Int?)? {
    let lines = String(decoding: head, as: UTF8.self).components(separatedBy: "\r\n")
    let statusParts = lines.first?.split(separator: " ") ?? []
    guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/1."),
      let status = Int(statusParts[1])
    else { return nil }
    return (status, headerValue("content-length", in: lines.dropFirst()).flatMap { Int($0) })
  }

  static func headerValue(_ name: String, in lines: ArraySlice<String>) -> String? {
    for line in lines {
      guard let colon = line.firstIndex(of: ":") else { continue }
      if line[..<colon].lowercased() == name {
        return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
      }
    }
    return nil
  }
}
