/// A code object's location table (`co_linetable`, CPython 3.11+ format, Objects/locations.md): a
/// sequence of entries, each covering 1 to 8 code units. An entry's first byte has bit 7 set, the kind
/// in bits 3–6 and the number of code units less one in bits 0–2:
///
/// - 15: no location (the units have no line);
/// - 14: long form: line delta (signed varint), end line delta, column + 1, end column + 1 (varints);
/// - 13: no columns: line delta (signed varint);
/// - 10–12: one line: line delta kind − 10, then two column bytes;
/// - 0–9: short form: same line, one column byte.
///
/// Varints are 6-bit chunks, least significant first, bit 6 meaning "more"; a signed varint keeps the
/// sign in its lowest bit. Lines are deltas from the previous entry's, starting at `co_firstlineno`.
struct CPythonLineTable: Sendable {
  /// Each entry's end (exclusive, in code units) and line; line nil for units with no location.
  private(set) var ranges: [(end: Int, line: Int?)] = []

  /// Decodes `bytes`; throws when the table is malformed (an entry cut short, a continuation byte where
  /// an entry should start, or a line that leaves the range of `Int32`).
  init(bytes: [UInt8], firstLine: Int) throws(CPythonProblem) {
    var cursor = 0
    var line = firstLine
    var end = 0
    func varint() throws(CPythonProblem) -> Int {
      var value = 0
      var shift = 0
      while true {
        guard cursor < bytes.count, bytes[cursor] & 0x80 == 0, shift < 32 else {
          throw CPythonProblem("location table: a number runs past its entry")
        }
        let byte = bytes[cursor]
        cursor += 1
        value |= Int(byte & 0x3f) << shift
        shift += 6
        if byte & 0x40 == 0 { return value }
      }
    }
    func signedVarint() throws(CPythonProblem) -> Int {
      let value = try varint()
      return value & 1 != 0 ? -(value >> 1) : value >> 1
    }
    func skip(_ count: Int) throws(CPythonProblem) {
      guard bytes.count - cursor >= count,
        !bytes[cursor..<cursor + count].contains(where: { $0 & 0x80 != 0 })
      else { throw CPythonProblem("location table: an entry is cut short") }
      cursor += count
    }
    while cursor < bytes.count {
      let first = bytes[cursor]
      guard first & 0x80 != 0 else {
        throw CPythonProblem("location table: byte \(cursor) does not start an entry")
      }
      cursor += 1
      let kind = Int(first >> 3 & 0xf)
      end += Int(first & 7) + 1
      var hasLine = true
      switch kind {
      case 15:
        hasLine = false
      case 14:
        line += try signedVarint()
        _ = try varint()
        _ = try varint()
        _ = try varint()
      case 13:
        line += try signedVarint()
      case 10...12:
        line += kind - 10
        try skip(2)
      default:
        try skip(1)
      }
      guard line >= Int(Int32.min), line <= Int(Int32.max) else {
        throw CPythonProblem("location table: line \(line) is out of range")
      }
      ranges.append((end, hasLine ? line : nil))
    }
  }

  /// Code units the table covers.
  var unitCount: Int { ranges.last?.end ?? 0 }

  /// The line of code unit `unit`: `.some(nil)` for a unit with no location, nil when the table does not
  /// cover it.
  func line(atUnit unit: Int) -> Int?? {
    guard unit >= 0, unit < unitCount else { return nil }
    var low = 0
    var high = ranges.count - 1
    while low < high {
      let middle = (low + high) / 2
      if ranges[middle].end <= unit { low = middle + 1 } else { high = middle }
    }
    return .some(ranges[low].line)
  }
}
