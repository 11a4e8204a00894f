/// A bounds-checked protobuf wire-format reader. Every read checks the remaining length, so truncated or
/// hostile input surfaces as `ProtobufReader.Failure`, never as an out-of-bounds trap.
struct ProtobufReader {
  struct Failure: Error {
    var offset: Int
    var reason: String
  }

  enum Value {
    case varint(UInt64)
    case fixed64(UInt64)
    case bytes(ArraySlice<UInt8>)
    case fixed32(UInt32)
  }

  private let bytes: ArraySlice<UInt8>
  private var position: Int

  init(_ bytes: ArraySlice<UInt8>) {
    self.bytes = bytes
    self.position = bytes.startIndex
  }

  var isAtEnd: Bool { position >= bytes.endIndex }

  /// The next field number and its value, or nil at the end of the message.
  mutating func next() throws(Failure) -> (field: Int, value: Value)? {
    guard !isAtEnd else { return nil }
    let start = position
    let key = try readVarint()
    let field = key >> 3
    guard field > 0, field <= 0x1fff_ffff else {
      throw Failure(offset: start, reason: "invalid field number \(field)")
    }
    switch key & 7 {
    case 0: return (Int(field), .varint(try readVarint()))
    case 1: return (Int(field), .fixed64(try readFixed(8)))
    case 2:
      let length = try readVarint()
      guard length <= UInt64(bytes.endIndex - position) else {
        throw Failure(offset: position, reason: "length \(length) runs past the end of the data")
      }
      let slice = bytes[position..<(position + Int(length))]
      position += Int(length)
      return (Int(field), .bytes(slice))
    case 5: return (Int(field), .fixed32(UInt32(try readFixed(4))))
    default:
      throw Failure(offset: start, reason: "unsupported wire type \(key & 7) for field \(field)")
    }
  }

  private mutating func readVarint() throws(Failure) -> UInt64 {
    var result: UInt64 = 0
    var shift: UInt64 = 0
    let start = position
    while true {
      guard position < bytes.endIndex else {
        throw Failure(offset: start, reason: "varint runs past the end of the data")
      }
      let byte = bytes[position]
      position += 1
      guard shift < 64 else { throw Failure(offset: start, reason: "varint longer than 10 bytes") }
      result |= UInt64(byte & 0x7f) << shift
      if byte & 0x80 == 0 { return result }
      shift += 7
    }
  }

  private mutating func readFixed(_ size: Int) throws(Failure) -> UInt64 {
    guard bytes.endIndex - position >= size else {
      throw Failure(offset: position, reason: "fixed-size value runs past the end of the data")
    }
    var result: UInt64 = 0
    for index in 0..<size { result |= UInt64(bytes[position + index]) << (8 * UInt64(index)) }
    position += size
    return result
  }

  /// Repeated integers arrive packed (one length-delimited run) or one per field; accept both.
  static func integers(_ value: Value) throws(Failure) -> [UInt64] {
    switch value {
    case .varint(let number), .fixed64(let number): return [number]
    case .fixed32(let number): return [UInt64(number)]
    case .bytes(let run):
      var reader = ProtobufReader(run)
      var values: [UInt64] = []
      while !reader.isAtEnd { values.append(try reader.readVarint()) }
      return values
    }
  }
}

extension ProtobufReader.Value {
  func integer(field: Int) throws(ProtobufReader.Failure) -> UInt64 {
    switch self {
    case .varint(let number), .fixed64(let number): return number
    case .fixed32(let number): return UInt64(number)
    case .bytes:
      throw ProtobufReader.Failure(
        offset: 0, reason: "field \(field) should be a number but is length-delimited")
    }
  }

  func message(field: Int) throws(ProtobufReader.Failure) -> ArraySlice<UInt8> {
    guard case .bytes(let slice) = self else {
      throw ProtobufReader.Failure(
        offset: 0, reason: "field \(field) should be length-delimited but is a number")
    }
    return slice
  }

  func string(field: Int) throws(ProtobufReader.Failure) -> String {
    String(decoding: try message(field: field), as: UTF8.self)
  }
}
