/// An `http://` or `https://host:port/path` URL that the agent posts to.
struct HTTPEndpoint: Sendable, Equatable, CustomStringConvertible {
  var host: String
  var port: UInt16
  /// Path and query, starting with "/".
  var target: String
  /// https: TLS, verified against the system's CA bundle or OTEL_EXPORTER_OTLP_CERTIFICATE.
  var secure: Bool

  init(host: String, port: UInt16, target: String, secure: Bool = false) {
    self.host = host
    self.port = port
    self.target = target
    self.secure = secure
  }

  init(parsing url: String) throws(ExportTransportError) {
    let secure: Bool
    let rest: Substring
    if url.hasPrefix("https://") {
      secure = true
      rest = url.dropFirst("https://".count)
    } else if url.hasPrefix("http://") {
      secure = false
      rest = url.dropFirst("http://".count)
    } else {
      throw ExportTransportError(
        code: .badURL, url: url, message: "expected http[s]://host[:port][/path]")
    }
    let authority = rest.prefix { $0 != "/" && $0 != "?" }
    var target = String(rest.dropFirst(authority.count))
    if target.isEmpty || target.first == "?" { target = "/" + target }
    var host = String(authority)
    var port: UInt16 = secure ? 443 : 80
    if authority.hasPrefix("[") {
      guard let close = authority.firstIndex(of: "]") else {
        throw ExportTransportError(code: .badURL, url: url, message: "unclosed [ in host")
      }
      host = String(authority[authority.index(after: authority.startIndex)..<close])
      let after = authority[authority.index(after: close)...]
      if after.hasPrefix(":") {
        guard let parsed = UInt16(after.dropFirst()) else {
          throw ExportTransportError(code: .badURL, url: url, message: "bad port")
        }
        port = parsed
      }
    } else if let colon = authority.lastIndex(of: ":") {
      host = String(authority[..<colon])
      guard let parsed = UInt16(authority[authority.index(after: colon)...]) else {
        throw ExportTransportError(code: .badURL, url: url, message: "bad port")
      }
      port = parsed
    }
    guard !host.isEmpty else {
      throw ExportTransportError(code: .badURL, url: url, message: "no host")
    }
    self.init(host: host, port: port, target: target, secure: secure)
  }

  /// The same server with another path (query kept out).
  func appendingPath(_ suffix: String) -> HTTPEndpoint {
    var base = target
    while base.hasSuffix("/") { base.removeLast() }
    return HTTPEndpoint(host: host, port: port, target: base + suffix, secure: secure)
  }

  var description: String {
    let hostText = host.contains(":") ? "[\(host)]" : host
    return "\(secure ? "https" : "http")://\(hostText):\(port)\(target)"
  }
}
