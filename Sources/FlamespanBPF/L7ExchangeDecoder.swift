import CFlamespanABI
import FlamespanModel
import Glibc

/// Turns `fs_l7_exchange` ring-buffer records into `HTTPExchange`s; a record too short for the fixed fields,
/// or longer than the struct, becomes `.malformed`.
enum L7ExchangeDecoder {
  static let recordSize = MemoryLayout<fs_l7_exchange>.size
  static let lineOffset = MemoryLayout<fs_l7_exchange>.offset(of: \.request_line)!

  /// `addresses` remembers the text of addresses seen before: formatting one per exchange was a visible
  /// share of the recorder's time at tens of thousands of spans per second.
  static func decode(_ record: UnsafeRawBufferPointer, addresses: AddressTextCache) -> L7Event {
    // The kernel sends the fixed fields and only the used part of the request line.
    guard record.count >= lineOffset, record.count <= recordSize else {
      return .malformed(size: record.count)
    }
    var raw = fs_l7_exchange()
    withUnsafeMutableBytes(of: &raw) { $0.copyMemory(from: record) }
    let kind: SpanKind
    switch UInt32(raw.role) {
    case FS_L7_ROLE_SERVER.rawValue: kind = .server
    case FS_L7_ROLE_CLIENT.rawValue: kind = .client
    default: return .malformed(size: record.count)
    }
    let flags = raw.flags
    let lineLength = min(Int(raw.request_line_len), record.count - lineOffset)
    let line = withUnsafeBytes(of: raw.request_line) { Array($0.prefix(lineLength)) }
    let address = withUnsafeBytes(of: raw.peer_address) { Array($0) }
    return .exchange(
      HTTPExchange(
        kind: kind, pid: Int32(bitPattern: raw.pid), tid: Int32(bitPattern: raw.tid), fd: raw.fd,
        connectionGeneration: raw.generation, startMonotonicNanos: raw.start_ns,
        endMonotonicNanos: raw.end_ns,
        traceID: withUnsafeBytes(of: raw.trace_id) { Array($0) },
        spanID: withUnsafeBytes(of: raw.span_id) { Array($0) },
        parentSpanID: flags & FS_L7_FLAG_HAS_PARENT.rawValue != 0
          ? withUnsafeBytes(of: raw.parent_span_id) { Array($0) } : nil,
        contextFromHeader: flags & FS_L7_FLAG_TRACEPARENT_HEADER.rawValue != 0,
        rejectedTraceparent: flags & FS_L7_FLAG_TRACEPARENT_INVALID.rawValue != 0,
        status: flags & FS_L7_FLAG_RESPONSE_SEEN.rawValue != 0 ? Int(raw.status) : nil,
        bytesIn: raw.bytes_in, bytesOut: raw.bytes_out, requestLine: line,
        peerAddress: addresses.text(family: Int32(raw.family), bytes: address),
        peerPort: Int(raw.peer_port), localPort: Int(raw.local_port),
        endReason: endReason(raw.end_reason)))
  }

  static func addressText(family: Int32, bytes: [UInt8]) -> String {
    guard family == AF_INET || family == AF_INET6 else { return "" }
    var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
    let converted = bytes.withUnsafeBytes {
      inet_ntop(family, $0.baseAddress, &text, socklen_t(text.count))
    }
    guard converted != nil else { return "" }
    return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  static func endReason(_ value: UInt8) -> HTTPExchange.EndReason {
    switch UInt32(value) {
    case FS_L7_END_NEXT_READ.rawValue: .nextRead
    case FS_L7_END_NEXT_REQUEST.rawValue: .nextRequest
    case FS_L7_END_CLOSE.rawValue: .close
    case FS_L7_END_REPLACED.rawValue: .fdReused
    case FS_L7_END_COMPLETE.rawValue: .complete
    default: .unknown(value)
    }
  }
}

/// Peer address texts by family and bytes, up to `limit` of them.
final class AddressTextCache {
  private struct Key: Hashable {
    var family: Int32
    var bytes: [UInt8]
  }
  private var texts: [Key: String] = [:]
  let limit: Int

  init(limit: Int = 4096) { self.limit = limit }

  func text(family: Int32, bytes: [UInt8]) -> String {
    let key = Key(family: family, bytes: bytes)
    if let known = texts[key] { return known }
    let text = L7ExchangeDecoder.addressText(family: family, bytes: bytes)
    if texts.count < limit { texts[key] = text }
    return text
  }
}
