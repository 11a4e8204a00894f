/// Bounds-checked little-endian reads of a `.gopclntab`'s bytes. Offsets arrive from the table itself,
/// so each one is checked before use and a bad one becomes a `GoPCLNError`, never a trap.
struct GoTableBytes: Sendable {
  let bytes: [UInt8]

  var count: Int { bytes.count }

  /// `offset` as an index when `length` bytes from it lie inside the table.
  func checked(_ offset: UInt64, length: Int, _ what: @autoclosure () -> String)
    throws(GoPCLNError) -> Int
  {
    guard offset <= UInt64(bytes.count), UInt64(bytes.count) - offset >= UInt64(length) else {
      throw GoPCLNError(
        .truncated,
        "\(what()) at offset 0x\(String(offset, radix: 16)) runs past the table's \(bytes.count) bytes"
      )
    }
    return Int(offset)
  }

  func u8(_ offset: UInt64, _ what: @autoclosure () -> String) throws(GoPCLNError) -> UInt8 {
    bytes[try checked(offset, length: 1, what())]
  }

  func u32(_ offset: UInt64, _ what: @autoclosure () -> String) throws(GoPCLNError) -> UInt32 {
    let start = try checked(offset, length: 4, what())
    return UInt32(bytes[start]) | UInt32(bytes[start + 1]) << 8 | UInt32(bytes[start + 2]) << 16
      | UInt32(bytes[start + 3]) << 24
  }

  /// A pointer-sized word (4 or 8 bytes).
  func word(_ offset: UInt64, size: Int, _ what: @autoclosure () -> String) throws(GoPCLNError)
    -> UInt64
  {
    let start = try checked(offset, length: size, what())
    var value: UInt64 = 0
    for index in (0..<size).reversed() { value = value << 8 | UInt64(bytes[start + index]) }
    return value
  }

  /// An unsigned LEB128 varint of at most 32 bits (the pcvalue encoding); advances `offset`.
  func uvarint(_ offset: inout UInt64, _ what: @autoclosure () -> String) throws(GoPCLNError)
    -> UInt32
  {
    var value: UInt32 = 0
    for shift in stride(from: 0, to: 35, by: 7) {
      let byte = try u8(offset, what())
      offset += 1
      value |= UInt32(byte & 0x7f) << UInt32(shift)
      if byte & 0x80 == 0 { return value }
    }
    throw GoPCLNError(.malformed, "\(what()): varint longer than 5 bytes")
  }

  /// The NUL-terminated string at `offset`, at most `limit` bytes long.
  func cString(_ offset: UInt64, limit: Int = 1 << 16, _ what: @autoclosure () -> String)
    throws(GoPCLNError) -> String
  {
    let start = try checked(offset, length: 1, what())
    let stop = min(bytes.count, start + limit)
    guard let end = bytes[start..<stop].firstIndex(of: 0) else {
      throw GoPCLNError(.malformed, "\(what()) at 0x\(String(offset, radix: 16)) is not terminated")
    }
    return String(decoding: bytes[start..<end], as: UTF8.self)
  }
}
