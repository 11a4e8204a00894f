import FlamespanModel

/// What the kernel reported about one exchange, in terms that do not depend on the BPF layer.
public struct ObservedExchange: Sendable {
  public var kind: HTTPSpan.Kind
  public var pid: Int32
  public var tid: Int32
  /// CLOCK_MONOTONIC nanoseconds.
  public var startMonotonicNanos: UInt64
  public var endMonotonicNanos: UInt64
  public var traceID: [UInt8]
  public var spanID: [UInt8]
  public var parentSpanID: [UInt8]?
  public var status: Int?
  public var requestLine: [UInt8]
  public var peerAddress: String
  public var peerPort: Int
  public var localPort: Int
  public var bytesIn: UInt64
  public var bytesOut: UInt64

  public init(
    kind: HTTPSpan.Kind, pid: Int32, tid: Int32, startMonotonicNanos: UInt64,
    endMonotonicNanos: UInt64, traceID: [UInt8], spanID: [UInt8], parentSpanID: [UInt8]?,
    status: Int?, requestLine: [UInt8], peerAddress: String, peerPort: Int, localPort: Int,
    bytesIn: UInt64, bytesOut: UInt64
  ) {
    self.kind = kind
    self.pid = pid
    self.tid = tid
    self.startMonotonicNanos = startMonotonicNanos
    self.endMonotonicNanos = endMonotonicNanos
    self.traceID = traceID
    self.spanID = spanID
    self.parentSpanID = parentSpanID
    self.status = status
    self.requestLine = requestLine
    self.peerAddress = peerAddress
    self.peerPort = peerPort
    self.localPort = localPort
    self.bytesIn = bytesIn
    self.bytesOut = bytesOut
  }
}

/// Turns observed exchanges into spans, dropping any whose ids or request line are not valid, and keeps
/// the span-id index that labels samples with span names.
public struct SpanAssembler: Sendable {
  /// Wall clock minus monotonic clock, in nanoseconds, measured once per recording.
  public let realtimeOffsetNanos: Int64
  public private(set) var spans: [HTTPSpan] = []
  /// Exchanges dropped because of invalid ids or an unparseable request line.
  public private(set) var rejected = 0
  /// Keyed by the 8 id bytes as one integer: hashing byte arrays was the recorder's top cost at 50k spans/s.
  private var indexBySpanID: [UInt64: Int] = [:]
  /// Parsed request lines: a busy server repeats a few lines thousands of times a second.
  private var parsedLines: [[UInt8]: RequestLine?] = [:]
  static let parsedLinesLimit = 4096

  public init(realtimeOffsetNanos: Int64) {
    self.realtimeOffsetNanos = realtimeOffsetNanos
  }

  /// Returns the span, or nil when the exchange was rejected or its span id was already seen.
  @discardableResult
  public mutating func add(_ exchange: ObservedExchange) -> HTTPSpan? {
    insert(exchange) ? spans.last : nil
  }

  /// `add` without handing back a copy of the span: whether it was kept.
  @discardableResult
  public mutating func insert(_ exchange: ObservedExchange) -> Bool {
    guard Self.validID(exchange.traceID, length: 16), Self.validID(exchange.spanID, length: 8),
      exchange.parentSpanID.map({ Self.validID($0, length: 8) }) ?? true,
      let line = requestLine(exchange.requestLine),
      exchange.endMonotonicNanos >= exchange.startMonotonicNanos
    else {
      rejected += 1
      return false
    }
    let key = Self.key(exchange.spanID)
    guard indexBySpanID[key] == nil else { return false }
    let span = HTTPSpan(
      traceID: exchange.traceID, spanID: exchange.spanID, parentSpanID: exchange.parentSpanID,
      kind: exchange.kind, method: line.method, path: line.path,
      status: exchange.status.flatMap { (100...599).contains($0) ? $0 : nil },
      startUnixNanos: Int64(clamping: exchange.startMonotonicNanos) &+ realtimeOffsetNanos,
      endUnixNanos: Int64(clamping: exchange.endMonotonicNanos) &+ realtimeOffsetNanos,
      pid: exchange.pid, tid: exchange.tid, peerAddress: exchange.peerAddress,
      peerPort: exchange.peerPort,
      serverPort: exchange.kind == .server ? exchange.localPort : exchange.peerPort,
      bytesIn: exchange.bytesIn, bytesOut: exchange.bytesOut)
    indexBySpanID[key] = spans.count
    spans.append(span)
    return true
  }

  private mutating func requestLine(_ bytes: [UInt8]) -> RequestLine? {
    if let known = parsedLines[bytes] { return known }
    let parsed = RequestLine.parse(bytes)
    if parsedLines.count < Self.parsedLinesLimit { parsedLines[bytes] = parsed }
    return parsed
  }

  public func span(withID spanID: [UInt8]) -> HTTPSpan? {
    guard spanID.count == 8 else { return nil }
    return indexBySpanID[Self.key(spanID)].map { spans[$0] }
  }

  /// Names each sample's span, and gives it the span's final trace id (the kernel may have learned the
  /// caller's trace from a header that arrived after the span started). Samples whose span is unknown
  /// keep their ids without a name.
  public func label(_ samples: [ProfileSample]) -> [ProfileSample] {
    samples.map { sample in
      guard let context = sample.span, let span = span(withID: context.spanID) else {
        return sample
      }
      var labelled = sample
      labelled.span = SpanContext(traceID: span.traceID, spanID: span.spanID, name: span.name)
      return labelled
    }
  }

  /// Callers pass validated 8-byte ids.
  static func key(_ spanID: [UInt8]) -> UInt64 {
    spanID.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
  }

  static func validID(_ id: [UInt8], length: Int) -> Bool {
    id.count == length && id.contains { $0 != 0 }
  }
}
