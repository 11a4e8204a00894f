import FlamespanModel

/// Turns the exchanges of one recording into spans, dropping any whose ids or request line are not
/// valid, and keeps the span-id index that labels samples with span names.
public struct SpanAssembler: Sendable {
  public let clock: KernelClock
  public private(set) var spans: [HTTPSpan] = []
  /// Exchanges dropped because of invalid ids or an unparseable request line.
  public private(set) var rejected = 0
  private var indexBySpanID: [UInt64: Int] = [:]
  /// Parsed request lines: a busy server repeats a few lines thousands of times a second.
  private var parsedLines: [[UInt8]: RequestLine?] = [:]
  static let parsedLinesLimit = 4096

  public init(clock: KernelClock) {
    self.clock = clock
  }

  /// Returns the span, or nil when the exchange was rejected or its span id was already seen.
  @discardableResult
  public mutating func add(_ exchange: HTTPExchange) -> HTTPSpan? {
    insert(exchange) ? spans.last : nil
  }

  /// `add` without handing back a copy of the span: whether it was kept.
  @discardableResult
  public mutating func insert(_ exchange: HTTPExchange) -> Bool {
    guard let line = requestLine(exchange.requestLine),
      let span = HTTPSpan(exchange: exchange, clock: clock, requestLine: line)
    else {
      rejected += 1
      return false
    }
    let key = SpanID.key(span.spanID)
    guard indexBySpanID[key] == nil else { return false }
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
    guard spanID.count == SpanID.spanIDLength else { return nil }
    return indexBySpanID[SpanID.key(spanID)].map { spans[$0] }
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
}
