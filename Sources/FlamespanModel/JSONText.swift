/// Just enough JSON writing for OTLP/JSON and the agent's API: strings escaped per RFC 8259, everything
/// else appended as the caller wrote it.
public struct JSONText: Sendable {
  public private(set) var text = ""

  public init() {}

  public mutating func raw(_ fragment: String) { text += fragment }

  public mutating func string(_ value: String) { Self.appendQuoted(value, to: &text) }

  /// `value` as a JSON string literal, quotes included.
  public static func quote(_ value: String) -> String {
    var out = ""
    appendQuoted(value, to: &out)
    return out
  }

  private static func appendQuoted(_ value: String, to text: inout String) {
    text += "\""
    for scalar in value.unicodeScalars {
      switch scalar {
      case "\"": text += "\\\""
      case "\\": text += "\\\\"
      case "\n": text += "\\n"
      case "\r": text += "\\r"
      case "\t": text += "\\t"
      // The agent's UI embeds API answers in its page: an escaped '<' cannot close a <script>.
      case "<": text += "\\u003c"
      case let control where control.value < 0x20:
        let hex = String(control.value, radix: 16)
        text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
      default: text.unicodeScalars.append(scalar)
      }
    }
    text += "\""
  }
}
