import FlamespanModel

/// The compact binary form of the store's interned records (stacks, locations, symbols, mappings): LEB128
/// varints and length-prefixed UTF-8. A record's bytes are also its identity, so the same stack or frame
/// list always encodes to the same bytes and is stored once.
struct StoreRecordWriter {
  private(set) var bytes: [UInt8] = []

  init() { bytes.reserveCapacity(64) }

  mutating func unsigned(_ value: UInt64) {
    var rest = value
    while rest >= 0x80 {
      bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
      rest >>= 7
    }
    bytes.append(UInt8(rest))
  }

  mutating func signed(_ value: Int64) {
    unsigned(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
  }

  mutating func string(_ text: String?) {
    guard let text else { return unsigned(0) }
    let utf8 = Array(text.utf8)
    unsigned(UInt64(utf8.count) + 1)
    bytes += utf8
  }

  mutating func blob(_ data: [UInt8]?) {
    guard let data else { return unsigned(0) }
    unsigned(UInt64(data.count) + 1)
    bytes += data
  }

  /// FNV-1a over the bytes: stable across processes (Swift's Hasher is seeded per process), so it can be
  /// stored and looked up. A match is confirmed by comparing the bytes.
  var fingerprint: Int64 { Self.fingerprint(bytes) }

  static func fingerprint(_ bytes: [UInt8]) -> Int64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes {
      hash ^= UInt64(byte)
      hash = hash &* 0x0000_0100_0000_01b3
    }
    return Int64(bitPattern: hash)
  }
}

/// Reads what `StoreRecordWriter` wrote; a record cut short or damaged throws instead of trapping.
struct StoreRecordReader {
  struct Damaged: Error, CustomStringConvertible {
    var record: String
    var description: String { "a stored \(record) record is damaged: rebuild the store" }
  }

  private let bytes: [UInt8]
  private var offset = 0
  private let record: String

  init(_ bytes: [UInt8], record: String) {
    self.bytes = bytes
    self.record = record
  }

  var isAtEnd: Bool { offset >= bytes.count }

  mutating func unsigned() throws(Damaged) -> UInt64 {
    var value: UInt64 = 0
    var shift: UInt64 = 0
    while offset < bytes.count, shift < 64 {
      let byte = bytes[offset]
      offset += 1
      value |= UInt64(byte & 0x7F) << shift
      if byte & 0x80 == 0 { return value }
      shift += 7
    }
    throw Damaged(record: record)
  }

  mutating func signed() throws(Damaged) -> Int64 {
    let raw = try unsigned()
    return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
  }

  mutating func blob() throws(Damaged) -> [UInt8]? {
    let length = try unsigned()
    guard length > 0 else { return nil }
    let count = Int(clamping: length - 1)
    guard count <= bytes.count - offset else { throw Damaged(record: record) }
    defer { offset += count }
    return Array(bytes[offset..<offset + count])
  }

  mutating func string() throws(Damaged) -> String? {
    try blob().map { String(decoding: $0, as: UTF8.self) }
  }
}

extension MappingKind {
  /// The number a mapping's kind is stored as; never renumber.
  var storeCode: UInt64 {
    switch self {
    case .file: 0
    case .deletedFile: 1
    case .vdso: 2
    case .anonymous: 3
    case .special: 4
    case .kernel: 5
    }
  }

  init?(storeCode: UInt64) {
    switch storeCode {
    case 0: self = .file
    case 1: self = .deletedFile
    case 2: self = .vdso
    case 3: self = .anonymous
    case 4: self = .special
    case 5: self = .kernel
    default: return nil
    }
  }
}

/// The records themselves: how each model value becomes bytes and back.
enum StoreRecords {
  static func encode(_ mapping: Mapping) -> [UInt8] {
    var writer = StoreRecordWriter()
    writer.unsigned(mapping.start)
    writer.unsigned(mapping.limit)
    writer.unsigned(mapping.fileOffset)
    writer.string(mapping.path)
    writer.blob(mapping.buildID?.bytes)
    writer.unsigned(mapping.kind.storeCode)
    writer.unsigned(mapping.device)
    writer.unsigned(mapping.inode)
    return writer.bytes
  }

  static func decodeMapping(_ bytes: [UInt8]) throws(StoreRecordReader.Damaged) -> Mapping {
    var reader = StoreRecordReader(bytes, record: "mapping")
    let start = try reader.unsigned()
    let limit = try reader.unsigned()
    let fileOffset = try reader.unsigned()
    let path = try reader.string() ?? ""
    let buildID = try reader.blob().map { BuildID(bytes: $0) }
    guard let kind = MappingKind(storeCode: try reader.unsigned()) else {
      throw StoreRecordReader.Damaged(record: "mapping")
    }
    let device = try reader.unsigned()
    let inode = try reader.unsigned()
    return Mapping(
      start: start, limit: limit, fileOffset: fileOffset, path: path, buildID: buildID, kind: kind,
      device: device, inode: inode)
  }

  /// A symbol: the object (build id, or the path when the file has none) and the address in it, with its
  /// inline chain. The same code in every process and window maps to one record.
  static func encodeSymbol(object: String, address: UInt64, frames: [SourceFrame]) -> [UInt8] {
    var writer = StoreRecordWriter()
    writer.string(object)
    writer.unsigned(address)
    writer.unsigned(UInt64(frames.count))
    for frame in frames {
      writer.string(frame.function)
      writer.string(frame.systemName)
      writer.string(frame.file)
      writer.signed(Int64(frame.line))
      writer.signed(Int64(frame.column))
    }
    return writer.bytes
  }

  static func decodeSymbolFrames(_ bytes: [UInt8]) throws(StoreRecordReader.Damaged)
    -> [SourceFrame]
  {
    var reader = StoreRecordReader(bytes, record: "symbol")
    _ = try reader.string()
    _ = try reader.unsigned()
    let count = try reader.unsigned()
    var frames: [SourceFrame] = []
    for _ in 0..<min(count, 4096) {
      let function = try reader.string() ?? ""
      let systemName = try reader.string()
      let file = try reader.string()
      let line = Int(clamping: try reader.signed())
      let column = Int(clamping: try reader.signed())
      frames.append(
        SourceFrame(
          function: function, systemName: systemName, file: file, line: line, column: column))
    }
    return frames
  }

  /// A location: the ids of its mapping and symbol (0 for none) and what is particular to this address.
  static func encodeLocation(
    _ location: ResolvedLocation, mappingID: Int64, symbolID: Int64
  ) -> [UInt8] {
    var writer = StoreRecordWriter()
    writer.unsigned(location.address)
    writer.unsigned(UInt64(mappingID))
    writer.unsigned(UInt64(symbolID))
    writer.string(location.unknownReason)
    writer.string(location.frameType?.rawValue)
    writer.unsigned(location.isJIT ? 1 : 0)
    return writer.bytes
  }

  struct LocationRecord {
    var address: UInt64
    var mappingID: Int64
    var symbolID: Int64
    var unknownReason: String?
    var frameType: FrameType?
    var isJIT: Bool
  }

  static func decodeLocation(_ bytes: [UInt8]) throws(StoreRecordReader.Damaged) -> LocationRecord {
    var reader = StoreRecordReader(bytes, record: "location")
    return LocationRecord(
      address: try reader.unsigned(), mappingID: Int64(bitPattern: try reader.unsigned()),
      symbolID: Int64(bitPattern: try reader.unsigned()), unknownReason: try reader.string(),
      frameType: try reader.string().map { FrameType(rawValue: $0) },
      isJIT: try reader.unsigned() != 0)
  }

  /// A stack: its location ids, leaf first.
  static func encodeStack(_ locationIDs: [Int64]) -> [UInt8] {
    var writer = StoreRecordWriter()
    for id in locationIDs { writer.unsigned(UInt64(id)) }
    return writer.bytes
  }

  static func decodeStack(_ bytes: [UInt8]) throws(StoreRecordReader.Damaged) -> [Int64] {
    var reader = StoreRecordReader(bytes, record: "stack")
    var ids: [Int64] = []
    while !reader.isAtEnd { ids.append(Int64(bitPattern: try reader.unsigned())) }
    return ids
  }
}
