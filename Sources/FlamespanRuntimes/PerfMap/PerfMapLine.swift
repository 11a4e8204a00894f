/// One line of a perf map, `START SIZE name`: START and SIZE in hex, with or without `0x`, and the name
/// the rest of the line (it may hold spaces). Parsed from bytes, without Foundation or regexes, because a
/// busy JIT writes millions of these.
public enum PerfMapLine {
  /// The largest size a line may give a piece of code. JIT functions are bytes to kilobytes; a size past
  /// this is a corrupt line, and taking it would hide every later entry's address behind one range.
  public static let maxCodeSize: UInt64 = 1 << 30
  /// Names longer than this are cut: a name is for people, and the cap bounds memory per entry.
  public static let maxNameLength = 1024

  /// What a line says.
  public enum Parsed: Equatable {
    /// A code range and the byte range of its name inside the line.
    case entry(start: UInt64, size: UInt64, name: Range<Int>)
    /// Nothing at all (an empty or all-blank line): not data, so not counted as bad.
    case blank
    /// Anything else: non-hex numbers, a missing field, a zero or absurd size, an overflowing range.
    case bad
  }

  /// Parses `line` (without its newline). The name range indexes into `line`.
  public static func parse(_ line: UnsafeBufferPointer<UInt8>) -> Parsed {
    var cursor = 0
    let count = line.count
    func skipBlanks() {
      while cursor < count, isBlank(line[cursor]) { cursor += 1 }
    }
    skipBlanks()
    if cursor == count { return .blank }
    guard let start = hexField(line, &cursor) else { return .bad }
    skipBlanks()
    guard let size = hexField(line, &cursor) else { return .bad }
    skipBlanks()
    // The name: the rest of the line, trimmed (a \r from a CRLF writer included).
    var nameEnd = count
    while nameEnd > cursor, isBlank(line[nameEnd - 1]) { nameEnd -= 1 }
    guard nameEnd > cursor else { return .bad }
    guard size > 0, size <= maxCodeSize else { return .bad }
    guard start <= UInt64.max - size else { return .bad }
    nameEnd = min(nameEnd, cursor + maxNameLength)
    return .entry(start: start, size: size, name: cursor..<nameEnd)
  }

  /// Convenience for tests and callers holding an array.
  public static func parse(_ line: [UInt8]) -> Parsed {
    line.withUnsafeBufferPointer { parse($0) }
  }

  @inline(__always)
  static func isBlank(_ byte: UInt8) -> Bool {
    byte == 0x20 || byte == 0x09 || byte == 0x0D
  }

  /// A hex number ending at a blank or the end of the line; nil when it is empty, holds a non-hex
  /// character, or does not fit 64 bits.
  private static func hexField(_ line: UnsafeBufferPointer<UInt8>, _ cursor: inout Int) -> UInt64? {
    let count = line.count
    if cursor + 1 < count, line[cursor] == UInt8(ascii: "0"),
      line[cursor + 1] | 0x20 == UInt8(ascii: "x")
    {
      cursor += 2
    }
    var value: UInt64 = 0
    var digits = 0
    while cursor < count, !isBlank(line[cursor]) {
      let byte = line[cursor]
      let digit: UInt8
      switch byte {
      case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
      case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
      case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
      default: return nil
      }
      // Leading zeros are free (Java pads to 16 digits); anything past 64 bits is an overflow.
      if value == 0, digit == 0 {
        digits = max(digits, 1)
        cursor += 1
        continue
      }
      guard value >> 60 == 0 else { return nil }
      value = value << 4 | UInt64(digit)
      digits += 1
      cursor += 1
    }
    return digits > 0 ? value : nil
  }
}
