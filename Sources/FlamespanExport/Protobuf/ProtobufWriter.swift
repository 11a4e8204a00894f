/// A minimal protobuf wire-format writer: enough for pprof, which needs varints, length-delimited fields
/// and packed repeated varints.
struct ProtobufWriter {
  private(set) var bytes: [UInt8] = []

  init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

  private enum WireType: UInt64 {
    case varint = 0
    case lengthDelimited = 2
  }

  private mutating func tag(_ field: Int, _ wireType: WireType) {
    varint(UInt64(field) << 3 | wireType.rawValue)
  }

  mutating func varint(_ value: UInt64) {
    var value = value
    while value >= 0x80 {
      bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
      value >>= 7
    }
    bytes.append(UInt8(value))
  }

  /// Writes an int64/uint64 field; proto3 omits zero values, and so do we.
  mutating func field(_ field: Int, _ value: UInt64) {
    guard value != 0 else { return }
    tag(field, .varint)
    varint(value)
  }

  /// A varint field written even when zero, for values whose presence matters (a label's `num`).
  mutating func forcedVarint(_ field: Int, _ value: UInt64) {
    tag(field, .varint)
    varint(value)
  }

  /// Appends fields already encoded by another writer; concatenated fields form one message.
  mutating func append(_ other: ProtobufWriter) {
    bytes.append(contentsOf: other.bytes)
  }

  /// int64 uses plain two's complement varints (not zigzag), so negatives take ten bytes as in protobuf.
  mutating func field(_ field: Int, _ value: Int64) {
    self.field(field, UInt64(bitPattern: value))
  }

  mutating func field(_ field: Int, _ value: Bool) {
    self.field(field, UInt64(value ? 1 : 0))
  }

  /// Repeated int64 in packed encoding (the proto3 default).
  mutating func packed(_ field: Int, _ values: some Collection<UInt64>) {
    guard !values.isEmpty else { return }
    var body = ProtobufWriter()
    for value in values { body.varint(value) }
    tag(field, .lengthDelimited)
    varint(UInt64(body.bytes.count))
    bytes.append(contentsOf: body.bytes)
  }

  /// A string is written even when empty: pprof's string_table[0] must be present as "".
  mutating func string(_ field: Int, _ value: String) {
    var value = value
    value.withUTF8 { utf8 in
      tag(field, .lengthDelimited)
      varint(UInt64(utf8.count))
      bytes.append(contentsOf: utf8)
    }
  }

  mutating func message(_ field: Int, _ build: (inout ProtobufWriter) -> Void) {
    var body = ProtobufWriter()
    build(&body)
    tag(field, .lengthDelimited)
    varint(UInt64(body.bytes.count))
    bytes.append(contentsOf: body.bytes)
  }
}
