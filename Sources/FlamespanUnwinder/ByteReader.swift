/// Why a piece of CFI could not be used. Internal: callers see it as `UnwindEnd.corruptCFI(reason)`.
struct CFIError: Error, Sendable {
  var reason: String
  init(_ reason: String) { self.reason = reason }
}

/// A bounds-checked little-endian cursor over bytes taken from a file. Every read past the end throws, so
/// corrupt or truncated CFI turns into an error instead of a crash or a read out of bounds.
struct ByteReader {
  let bytes: [UInt8]
  var offset: Int
  /// Reads may not go past this index (the end of the current CIE or FDE, or of the section).
  var limit: Int

  init(_ bytes: [UInt8], offset: Int = 0, limit: Int? = nil) {
    self.bytes = bytes
    self.offset = offset
    self.limit = min(limit ?? bytes.count, bytes.count)
  }

  var isAtEnd: Bool { offset >= limit }

  private mutating func take(_ count: Int) throws(CFIError) -> Int {
    guard count >= 0, offset >= 0, offset <= limit, limit - offset >= count else {
      throw CFIError("read of \(count) bytes at offset \(offset) runs past the end (\(limit))")
    }
    let start = offset
    offset += count
    return start
  }

  mutating func skip(_ count: Int) throws(CFIError) { _ = try take(count) }

  mutating func u8() throws(CFIError) -> UInt8 { bytes[try take(1)] }

  mutating func u16() throws(CFIError) -> UInt16 {
    let start = try take(2)
    return UInt16(bytes[start]) | UInt16(bytes[start + 1]) << 8
  }

  mutating func u32() throws(CFIError) -> UInt32 {
    let start = try take(4)
    var value: UInt32 = 0
    for index in (0..<4).reversed() { value = value << 8 | UInt32(bytes[start + index]) }
    return value
  }

  mutating func u64() throws(CFIError) -> UInt64 {
    let start = try take(8)
    var value: UInt64 = 0
    for index in (0..<8).reversed() { value = value << 8 | UInt64(bytes[start + index]) }
    return value
  }

  mutating func uleb128() throws(CFIError) -> UInt64 {
    var result: UInt64 = 0
    var shift: UInt64 = 0
    while true {
      let byte = try u8()
      if shift < 64 { result |= UInt64(byte & 0x7f) << shift }
      shift += 7
      if byte & 0x80 == 0 { return result }
      guard shift < 70 else { throw CFIError("LEB128 value longer than 10 bytes") }
    }
  }

  mutating func sleb128() throws(CFIError) -> Int64 {
    var result: Int64 = 0
    var shift: Int64 = 0
    var byte: UInt8 = 0
    repeat {
      byte = try u8()
      if shift < 64 { result |= Int64(byte & 0x7f) << shift }
      shift += 7
      guard shift < 70 || byte & 0x80 == 0 else {
        throw CFIError("LEB128 value longer than 10 bytes")
      }
    } while byte & 0x80 != 0
    // Every bit from `shift` up takes the sign. (Negating 1 << 63 overflowed: a 9-byte value trapped,
    // found by the CFI fuzz target, Fuzz/Crashers/cfi/.)
    if shift < 64, byte & 0x40 != 0 { result |= -1 << shift }
    return result
  }

  mutating func cString() throws(CFIError) -> [UInt8] {
    var text: [UInt8] = []
    while true {
      let byte = try u8()
      if byte == 0 { return text }
      text.append(byte)
      guard text.count < 64 else { throw CFIError("augmentation string longer than 64 bytes") }
    }
  }

  /// A ULEB128 count of the bytes that follow it; one larger than what is left is corrupt (and one past
  /// Int.max would trap on conversion: found by the CFI fuzz target, Fuzz/Crashers/cfi/).
  mutating func lengthULEB128() throws(CFIError) -> Int {
    let length = try uleb128()
    guard length <= UInt64(max(0, limit - offset)) else {
      throw CFIError("length \(length) at offset \(offset) runs past the end (\(limit))")
    }
    return Int(length)
  }

  /// Bytes [offset, offset+count) as a slice-free copy, for expressions kept in rules.
  mutating func block(_ count: Int) throws(CFIError) -> [UInt8] {
    let start = try take(count)
    return Array(bytes[start..<(start + count)])
  }
}

/// DW_EH_PE_* pointer encodings of .eh_frame (LSB 3.0 §10.5).
enum PointerEncoding {
  static let omit: UInt8 = 0xff

  /// Reads a pointer encoded as `encoding`. `fieldAddress` is the virtual address of the field (for pcrel),
  /// `dataBase` the .eh_frame_hdr or GOT address for datarel when known.
  static func read(
    _ reader: inout ByteReader, encoding: UInt8, fieldAddress: UInt64, dataBase: UInt64? = nil
  ) throws(CFIError) -> UInt64 {
    guard encoding != omit else { throw CFIError("pointer with the omit encoding") }
    let start = fieldAddress
    var value: UInt64
    switch encoding & 0x0f {
    case 0x00: value = try reader.u64()
    case 0x01: value = try reader.uleb128()
    case 0x02: value = UInt64(try reader.u16())
    case 0x03: value = UInt64(try reader.u32())
    case 0x04: value = try reader.u64()
    case 0x09: value = UInt64(bitPattern: try reader.sleb128())
    case 0x0a: value = UInt64(bitPattern: Int64(Int16(bitPattern: try reader.u16())))
    case 0x0b: value = UInt64(bitPattern: Int64(Int32(bitPattern: try reader.u32())))
    case 0x0c: value = try reader.u64()
    default:
      throw CFIError("unknown pointer format 0x\(String(encoding & 0x0f, radix: 16))")
    }
    switch encoding & 0x70 {
    case 0x00: break
    case 0x10: value = value &+ start
    case 0x30:
      guard let dataBase else { throw CFIError("datarel pointer without a data base") }
      value = value &+ dataBase
    default:
      throw CFIError("unsupported pointer application 0x\(String(encoding & 0x70, radix: 16))")
    }
    // DW_EH_PE_indirect points at the value in memory; only personality routines use it, never
    // pc_begin, and we skip personality pointers without applying them.
    return value
  }

  /// The byte size of a fixed-size encoding, for the pc_range that reuses pc_begin's format.
  static func readRange(_ reader: inout ByteReader, encoding: UInt8) throws(CFIError) -> UInt64 {
    try read(&reader, encoding: encoding & 0x0f, fieldAddress: 0)
  }
}
