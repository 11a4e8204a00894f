/// The method and path of an HTTP/1.x request line, with the query string removed. Nothing else of the
/// line (or of the request) is kept.
public struct RequestLine: Sendable, Equatable {
  public var method: String
  public var path: String

  public init(method: String, path: String) {
    self.method = method
    self.path = path
  }

  /// Known methods only: a span is never named after arbitrary bytes.
  public static let methods: Set<String> = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
  ]

  /// Parses `METHOD SP target [SP HTTP/1.x]`, possibly cut short (the tracer sends at most 128 bytes, cut
  /// at '?'). Returns nil for anything that is not a request line.
  public static func parse(_ bytes: [UInt8]) -> RequestLine? {
    var line = bytes[...]
    if let end = line.firstIndex(where: { $0 == 0x0d || $0 == 0x0a }) { line = line[..<end] }
    let parts = line.split(separator: 0x20, maxSplits: 2, omittingEmptySubsequences: false)
    guard parts.count >= 2 else { return nil }
    let method = String(decoding: parts[0], as: UTF8.self)
    guard methods.contains(method) else { return nil }
    var target = parts[1]
    if let query = target.firstIndex(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") })
    {
      target = target[..<query]
    }
    // Origin form ("/a/b") or, for proxies, absolute form ("http://host/a"): keep only the path.
    if target.starts(with: Array("http://".utf8)) || target.starts(with: Array("https://".utf8)) {
      let afterScheme = target.dropFirst(target.starts(with: Array("https://".utf8)) ? 8 : 7)
      target =
        afterScheme.firstIndex(of: UInt8(ascii: "/")).map { afterScheme[$0...] }
        ?? [UInt8(ascii: "/")][...]
    }
    if method == "CONNECT" || method == "OPTIONS" && target.elementsEqual([UInt8(ascii: "*")]) {
      return RequestLine(method: method, path: String(decoding: target, as: UTF8.self))
    }
    guard target.first == UInt8(ascii: "/"), target.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
      return nil
    }
    if parts.count == 3 {
      let version = parts[2]
      guard version.starts(with: Array("HTTP/1.".utf8)) || version.isEmpty else { return nil }
    }
    return RequestLine(method: method, path: String(decoding: target, as: UTF8.self))
  }
}
