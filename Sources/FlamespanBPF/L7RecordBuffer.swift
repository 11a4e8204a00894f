import CFlamespanABI

/// Exchange records kept as the kernel wrote them, to be decoded later: the fixed fields and the request
/// line, ~150 bytes each. Appending is a copy, so the consumer of a busy ring buffer (tens of thousands
/// of exchanges a second) does no decoding, allocation or hashing while the traced server runs; decoding
/// and span assembly happen in batches (`forEach`), for `record` once the recording is over.
public struct L7RecordBuffer: Sendable {
  /// Records are stored in chunks of a fixed capacity: one array grown by doubling copied everything it
  /// held at each growth and faulted in fresh pages for the copy, which was most of the recorder's work
  /// under a busy server.
  private var chunks: [[UInt8]] = []
  static let chunkBytes = 1 << 20
  /// Records kept.
  public private(set) var count = 0
  /// Records too short or too long to be an exchange.
  public private(set) var malformed = 0
  /// Bytes held: what a caller bounds to keep memory in check.
  public private(set) var byteCount = 0

  public init() {}

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
    if chunks.isEmpty || chunks[chunks.count - 1].count + 2 + kept > Self.chunkBytes {
      var chunk: [UInt8] = []
      chunk.reserveCapacity(Self.chunkBytes)
      chunks.append(chunk)
    }
    let last = chunks.count - 1
    chunks[last].append(UInt8(truncatingIfNeeded: kept))
    chunks[last].append(UInt8(truncatingIfNeeded: kept >> 8))
    chunks[last].append(contentsOf: record[0..<kept])
    byteCount += 2 + kept
    count += 1
  }

  /// Decodes every record, oldest first.
  public func forEach(_ body: (L7Event) -> Void) {
    let addresses = AddressTextCache()
    withUnsafeTemporaryAllocation(byteCount: Self.recordSize, alignment: 8) { record in
      for chunk in chunks {
        chunk.withUnsafeBytes { stored in
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
    }
    for _ in 0..<malformed { body(.malformed(size: 0)) }
  }

  public mutating func removeAll() {
    chunks.removeAll(keepingCapacity: false)
    byteCount = 0
    count = 0
    malformed = 0
  }
}
