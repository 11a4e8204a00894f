/// The method and target of an HTTP/1.x request line (RFC 9112 §3), with the query string and fragment
/// removed: the one parser that names spans in `record`, in the agent's sample labels and in exported
/// spans. Nothing else of the line (or of the request) is kept, since a query may hold secrets.
public struct RequestLine: Sendable, Equatable, Hashable {
  /// Any RFC 9110 token (`GET`, `PURGE`, `PROPFIND`…), case kept: methods are case-sensitive.
  public var method: String
  /// `/a/b` for origin-form and absolute-form targets, `*` for asterisk-form, `host:port` for the
  /// authority-form of CONNECT.
  public var path: String
  /// The host of an absolute-form (`http://h/a`) or authority-form target, without port or brackets.
  public var host: String?
  /// The port written in such a target, if any.
  public var port: Int?

  public init(method: String, path: String, host: String? = nil, port: Int? = nil) {
    self.method = method
    self.path = path
    self.host = host
    self.port = port
  }

  /// `METHOD path`: the span name the OTel HTTP conventions give when no route template is known.
  public var spanName: String { "\(method) \(path)" }

  /// Parses `METHOD SP target [SP HTTP/1.x]`, possibly cut short: the tracer sends at most 128 bytes and
  /// cuts at the '?', so the version may be missing or partial. Returns nil for anything that is not a
  /// request line, so a span is never named after arbitrary bytes.
  public static func parse(_ bytes: some Collection<UInt8>) -> RequestLine? {
    var line = Array(bytes)[...]
    if let end = line.firstIndex(where: { $0 == ascii.cr || $0 == ascii.lf }) {
      line = line[..<end]
    }
    let parts = line.split(separator: ascii.space, maxSplits: 2, omittingEmptySubsequences: false)
    guard parts.count >= 2, !parts[0].isEmpty, parts[0].allSatisfy(isTokenCharacter) else {
      return nil
    }
    if parts.count == 3 && !isVersion(parts[2]) { return nil }
    let method = String(decoding: parts[0], as: UTF8.self)
    var target = parts[1]
    if let cut = target.firstIndex(where: { $0 == ascii.question || $0 == ascii.hash }) {
      target = target[..<cut]
    }
    guard !target.isEmpty, target.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else { return nil }

    if target.first == ascii.slash {
      return RequestLine(method: method, path: String(decoding: target, as: UTF8.self))
    }
    if target.elementsEqual([ascii.star]) {
      // Asterisk-form means "the server itself", which only OPTIONS may ask about (RFC 9112 §3.2.4).
      return method == "OPTIONS" ? RequestLine(method: method, path: "*") : nil
    }
    if let absolute = absoluteForm(target) {
      var parsed = absolute
      parsed.method = method
      return parsed
    }
    if method == "CONNECT", let (host, port) = authority(target[...]), port != nil {
      return RequestLine(
        method: method, path: String(decoding: target, as: UTF8.self), host: host, port: port)
    }
    return nil
  }

  /// `scheme://authority[/path]`, as sent to proxies; the path defaults to `/`.
  private static func absoluteForm(_ target: ArraySlice<UInt8>) -> RequestLine? {
    guard let colon = target.firstIndex(of: ascii.colon), colon > target.startIndex,
      target[target.startIndex].isASCIILetter,
      target[..<colon].allSatisfy({
        $0.isASCIILetter || $0.isASCIIDigit || $0 == ascii.plus || $0 == ascii.minus
          || $0 == ascii.dot
      }),
      target[colon...].starts(with: [ascii.colon, ascii.slash, ascii.slash])
    else { return nil }
    let rest = target[(colon + 3)...]
    let pathStart = rest.firstIndex(of: ascii.slash) ?? rest.endIndex
    guard let (host, port) = authority(rest[..<pathStart]) else { return nil }
    let path = pathStart < rest.endIndex ? String(decoding: rest[pathStart...], as: UTF8.self) : "/"
    return RequestLine(method: "", path: path, host: host, port: port)
  }

  /// `[userinfo@]host[:port]`, host possibly a bracketed IPv6 literal; nil when the host is empty or the
  /// port is not a number.
  private static func authority(_ text: ArraySlice<UInt8>) -> (String, Int?)? {
    var rest = text
    if let at = rest.lastIndex(of: ascii.at) { rest = rest[(at + 1)...] }
    var host: ArraySlice<UInt8>
    var portText: ArraySlice<UInt8>?
    if rest.first == ascii.openBracket {
      guard let close = rest.firstIndex(of: ascii.closeBracket) else { return nil }
      host = rest[(rest.startIndex + 1)..<close]
      let after = rest[(close + 1)...]
      if !after.isEmpty {
        guard after.first == ascii.colon else { return nil }
        portText = after.dropFirst()
      }
    } else if let colon = rest.lastIndex(of: ascii.colon) {
      host = rest[..<colon]
      portText = rest[(colon + 1)...]
    } else {
      host = rest
    }
    guard !host.isEmpty else { return nil }
    var port: Int?
    if let portText, !portText.isEmpty {
      guard portText.count <= 5, portText.allSatisfy(\.isASCIIDigit),
        let number = Int(String(decoding: portText, as: UTF8.self)), number <= 65535
      else { return nil }
      port = number
    }
    return (String(decoding: host, as: UTF8.self), port)
  }

  /// `HTTP/1.x`, or the start of it when the line was cut.
  private static func isVersion(_ text: ArraySlice<UInt8>) -> Bool {
    let version = Array("HTTP/1.".utf8)
    if text.count <= version.count { return version.starts(with: text) }
    return text.starts(with: version)
  }

  /// RFC 9110 §5.6.2 `tchar`.
  static func isTokenCharacter(_ byte: UInt8) -> Bool { tokenCharacters[Int(byte)] }

  /// A table, since every exchange's method goes through it.
  private static let tokenCharacters: [Bool] = (0...255).map { value in
    let byte = UInt8(value)
    return byte.isASCIILetter || byte.isASCIIDigit || Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
  }

  private enum ascii {
    static let cr = UInt8(ascii: "\r")
    static let lf = UInt8(ascii: "\n")
    static let space = UInt8(ascii: " ")
    static let question = UInt8(ascii: "?")
    static let hash = UInt8(ascii: "#")
    static let slash = UInt8(ascii: "/")
    static let star = UInt8(ascii: "*")
    static let colon = UInt8(ascii: ":")
    static let at = UInt8(ascii: "@")
    static let plus = UInt8(ascii: "+")
    static let minus = UInt8(ascii: "-")
    static let dot = UInt8(ascii: ".")
    static let openBracket = UInt8(ascii: "[")
    static let closeBracket = UInt8(ascii: "]")
  }
}

extension UInt8 {
  fileprivate var isASCIILetter: Bool {
    (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(self)
      || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(self)
  }
  fileprivate var isASCIIDigit: Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self) }
}
