import CFlamespanABI
import FlamespanModel
import Testing

@testable import FlamespanBPF

/// Records kept undecoded must decode later exactly as they would have at once.
@Suite struct L7RecordBufferTests {
  static func record(line: String, pid: UInt32, port: UInt16) -> [UInt8] {
    var raw = fs_l7_exchange()
    raw.pid = pid
    raw.tid = pid + 1
    raw.fd = 7
    raw.flags = FS_L7_FLAG_RESPONSE_SEEN.rawValue | FS_L7_FLAG_HAS_PARENT.rawValue
    raw.generation = 0xfeed
    raw.start_ns = 1_000
    raw.end_ns = 5_000
    raw.bytes_in = 77
    raw.bytes_out = 12_345
    withUnsafeMutableBytes(of: &raw.trace_id) { for i in 0..<16 { $0[i] = UInt8(i + 1) } }
    withUnsafeMutableBytes(of: &raw.span_id) { for i in 0..<8 { $0[i] = UInt8(0xa0 + i) } }
    withUnsafeMutableBytes(of: &raw.parent_span_id) { for i in 0..<8 { $0[i] = UInt8(0xb0 + i) } }
    withUnsafeMutableBytes(of: &raw.peer_address) {
      $0[0] = 127
      $0[3] = 1
    }
    raw.family = 2
    raw.peer_port = 40_000
    raw.local_port = port
    raw.status = 204
    raw.role = UInt8(FS_L7_ROLE_SERVER.rawValue)
    raw.end_reason = UInt8(FS_L7_END_COMPLETE.rawValue)
    let bytes = Array(line.utf8)
    raw.request_line_len = UInt16(bytes.count)
    withUnsafeMutableBytes(of: &raw.request_line) { $0.copyBytes(from: bytes) }
    return withUnsafeBytes(of: raw) { Array($0) }
  }

  @Test func keptRecordsDecodeLikeFreshOnesAndShortOnesAreCounted() throws {
    let lines = ["GET /a", "POST /orders/42 HTTP/1.1", String(repeating: "x", count: 128), ""]
    var buffer = L7RecordBuffer()
    var expected: [L7Event] = []
    for (index, line) in lines.enumerated() {
      let whole = Self.record(line: line, pid: UInt32(100 + index), port: UInt16(8000 + index))
      // The kernel sends only the used part of the line.
      let record = Array(whole.prefix(L7ExchangeDecoder.lineOffset + line.utf8.count))
      record.withUnsafeBytes { buffer.append($0) }
      // Decoded at once, with a cache of its own, as `L7Tracer.poll` does.
      let fresh = record.withUnsafeBytes {
        L7ExchangeDecoder.decode($0, addresses: AddressTextCache())
      }
      let full = whole.withUnsafeBytes {
        L7ExchangeDecoder.decode($0, addresses: AddressTextCache())
      }
      guard case .exchange(let short) = fresh, case .exchange(let long) = full else {
        Issue.record("record \(index) did not decode")
        continue
      }
      #expect(short == long)
      expected.append(fresh)
    }
    // Shorter than the fixed fields, and longer than a whole record.
    [UInt8](repeating: 1, count: 40).withUnsafeBytes { buffer.append($0) }
    [UInt8](repeating: 1, count: MemoryLayout<fs_l7_exchange>.size + 8).withUnsafeBytes {
      buffer.append($0)
    }
    #expect(buffer.count == 4)
    #expect(buffer.malformed == 2)
    // Only the used part of each request line is kept.
    #expect(buffer.byteCount < 4 * MemoryLayout<fs_l7_exchange>.size)

    var decoded: [HTTPExchange] = []
    var malformed = 0
    buffer.forEach { event in
      switch event {
      case .exchange(let exchange): decoded.append(exchange)
      case .malformed: malformed += 1
      }
    }
    #expect(malformed == 2)
    #expect(decoded.count == 4)
    for (got, want) in zip(decoded, expected) {
      guard case .exchange(let want) = want else {
        Issue.record("the reference decode failed")
        continue
      }
      #expect(got == want)
    }
    #expect(decoded.first?.peerAddress == "127.0.0.1")
    #expect(decoded.first?.endReason == .complete)
    #expect(String(decoding: decoded[1].requestLine, as: UTF8.self) == "POST /orders/42 HTTP/1.1")
    buffer.removeAll()
    #expect(buffer.count == 0 && buffer.byteCount == 0)
  }
}
