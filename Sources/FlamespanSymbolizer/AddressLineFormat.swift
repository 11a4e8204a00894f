import FlamespanModel

/// The line format of `flamespan symbolize`: one hex address per input line, one JSON object per output line.
/// Kept here, next to the data it renders, so that it is tested without running the command.
public enum AddressLineFormat {
  public enum ParsedLine: Equatable, Sendable {
    case blank
    case address(UInt64)
    case malformed(String)
  }

  /// Accepts `1a2b`, `0x1A2B` and surrounding spaces; anything else is malformed.
  public static func parse<Line: StringProtocol>(_ line: Line) -> ParsedLine {
    parse(utf8: Array(line.utf8))
  }

  /// The same on raw bytes, so a reader of millions of lines need not build a String per line.
  public static func parse<Bytes: BidirectionalCollection>(utf8 line: Bytes) -> ParsedLine
  where Bytes.Element == UInt8 {
    var utf8 = line[...]
    while let first = utf8.first, first == 0x20 || first == 0x09 || first == 0x0d {
      utf8 = utf8.dropFirst()
    }
    while let last = utf8.last, last == 0x20 || last == 0x09 || last == 0x0d {
      utf8 = utf8.dropLast()
    }
    if utf8.isEmpty { return .blank }
    if utf8.count > 2, utf8.first == UInt8(ascii: "0"),
      utf8.dropFirst().first == UInt8(ascii: "x") || utf8.dropFirst().first == UInt8(ascii: "X")
    {
      utf8 = utf8.dropFirst(2)
    }
    guard utf8.count <= 16 else { return .malformed("address wider than 64 bits") }
    var value: UInt64 = 0
    for byte in utf8 {
      let digit: UInt64
      switch byte {
      case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt64(byte - UInt8(ascii: "0"))
      case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt64(byte - UInt8(ascii: "a")) + 10
      case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt64(byte - UInt8(ascii: "A")) + 10
      default: return .malformed("not a hexadecimal address")
      }
      value = value << 4 | digit
    }
    return .address(value)
  }

  /// `{"address":"0x…","frames":[{"function":…,"file":…,"line":…,"column":…},…]}`, innermost frame first;
  /// `"mangled"` when demangling changed the name, `"reason"` when `frames` is empty, `"module"` for kernel
  /// module symbols.
  public static func json(for location: ResolvedLocation) -> String {
    var out: [UInt8] = []
    appendJSON(for: location, to: &out)
    return String(decoding: out, as: UTF8.self)
  }

  /// The same object appended as UTF-8, which is what a writer of many lines wants.
  public static func appendJSON(for location: ResolvedLocation, to out: inout [UInt8]) {
    appendLiteral("{\"address\":\"0x", to: &out)
    appendLiteral(String(location.address, radix: 16), to: &out)
    appendLiteral("\",\"frames\":[", to: &out)
    for (index, frame) in location.frames.enumerated() {
      if index > 0 { out.append(UInt8(ascii: ",")) }
      appendLiteral("{\"function\":", to: &out)
      appendString(frame.function, to: &out)
      if let systemName = frame.systemName {
        appendLiteral(",\"mangled\":", to: &out)
        appendString(systemName, to: &out)
      }
      appendLiteral(",\"file\":", to: &out)
      if let file = frame.file {
        appendString(file, to: &out)
      } else {
        appendLiteral("null", to: &out)
      }
      appendLiteral(",\"line\":\(frame.line),\"column\":\(frame.column)}", to: &out)
    }
    out.append(UInt8(ascii: "]"))
    if let mapping = location.mapping, mapping.kind == .kernel, mapping.path != Mapping.kernel.path
    {
      appendLiteral(",\"module\":", to: &out)
      appendString(mapping.path, to: &out)
    }
    if location.frames.isEmpty {
      appendLiteral(",\"reason\":", to: &out)
      appendString(location.unknownReason ?? "unknown", to: &out)
    }
    out.append(UInt8(ascii: "}"))
  }

  /// `{"input":"…","error":"…"}` for a line that is not an address.
  public static func errorJSON(input: String, message: String) -> String {
    var out: [UInt8] = []
    appendLiteral("{\"input\":", to: &out)
    appendString(input, to: &out)
    appendLiteral(",\"error\":", to: &out)
    appendString(message, to: &out)
    out.append(UInt8(ascii: "}"))
    return String(decoding: out, as: UTF8.self)
  }

  private static func appendLiteral(_ text: String, to out: inout [UInt8]) {
    out.append(contentsOf: text.utf8)
  }

  /// A JSON string literal. Swift strings are valid UTF-8, so only quotes, backslashes and control bytes need
  /// escaping; everything else is copied byte for byte.
  static func appendString(_ text: String, to out: inout [UInt8]) {
    out.append(UInt8(ascii: "\""))
    var text = text
    text.withUTF8 { bytes in
      var runStart = 0
      for index in 0..<bytes.count {
        let byte = bytes[index]
        guard byte == 0x22 || byte == 0x5c || byte < 0x20 else { continue }
        out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
        switch byte {
        case 0x22: out.append(contentsOf: [0x5c, 0x22])
        case 0x5c: out.append(contentsOf: [0x5c, 0x5c])
        case 0x0a: out.append(contentsOf: [0x5c, UInt8(ascii: "n")])
        case 0x0d: out.append(contentsOf: [0x5c, UInt8(ascii: "r")])
        case 0x09: out.append(contentsOf: [0x5c, UInt8(ascii: "t")])
        default:
          let digits = Array("0123456789abcdef".utf8)
          out.append(contentsOf: [
            0x5c, UInt8(ascii: "u"), 0x30, 0x30, digits[Int(byte >> 4)], digits[Int(byte & 0xf)],
          ])
        }
        runStart = index + 1
      }
      out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<bytes.count]))
    }
    out.append(UInt8(ascii: "\""))
  }
}
