import CFlamespanABI

/// Exchange records kept as the kernel wrote them, to be decoded later: the fixed fields and the request
/// line, ~150 bytes each. Appending is a copy, so the consumer of a busy ring buffer (tens of thousands
/// of exchanges a second) does no decoding, allocation or hashing while the traced server runs; decoding
/// and span assembly happen in batches (`forEach`), for `record` once the recording is over.
public struct L7RecordBuffer: Sendable {
  private var bytes: [UInt8] = []
  /// Records kept.
  public private(set) var count = 0
  /// Records too short or too long to be an exchange.
  public private(set) var malformed = 0

  public init() {}

  /// Bytes held: what a caller bounds to keep memory in check.
  public var byteCount: Int { bytes.count }

  static let recordSize = L7ExchangeDecoder.recordSize
  static let lineOffset = L7ExchangeDecoder.lineOffset
  static let lineLengthOffset = MemoryLayout<fs_l7_exchange>.offset(of: \.request_line_len)!

  /// `record` is what the kernel sent: the fixed fields and the used part of the request line.
  mutating func append(_ record: UnsafeRawBufferPointer) {
    guard record.count >= Self.lineOffset, record.count <= Self.recordSize else {
      malformed += 1
      return
    }
    let lineLength = min(
      Int(record.loadUnaligned(fromByteOffset: Self.lineLengthOffset, as: UInt16.self)),
      record.count - Self.lineOffset)
    let kept = Self.lineOffset + lineLength
    bytes.append(UInt8(truncatingIfNeeded: kept))
    bytes.append(UInt8(truncatingIfNeeded: kept >> 8))
    bytes.append(contentsOf: record[0..<kept])
    count += 1
  }

  /// Decodes every record, oldest first.
  public func forEach(_ body: (L7Event) -> Void) {
    let addresses = AddressTextCache()
    withUnsafeTemporaryAllocation(byteCount: Self.recordSize, alignment: 8) { record in
      bytes.withUnsafeBytes { stored in
        var offset = 0
        while offset + 2 <= stored.count {
          let kept = Int(stored[offset]) | Int(stored[offset + 1]) << 8
          offset += 2
          guard kept <= Self.recordSize, offset + kept <= stored.count else { return }
          // The line's unused tail was never stored: the record is rebuilt zero-filled around it.
          record.initializeMemory(as: UInt8.self, repeating: 0)
          record.copyMemory(
            from: UnsafeRawBufferPointer(rebasing: stored[offset..<(offset + kept)]))
          body(L7ExchangeDecoder.decode(UnsafeRawBufferPointer(record), addresses: addresses))
          offset += kept
        }
      }
    }
    for _ in 0..<malformed { body(.malformed(size: 0)) }
  }

  public mutating func removeAll() {
    bytes.removeAll(keepingCapacity: false)
    count = 0
    malformed = 0
  }
}
