import FlamespanModel

public enum L7Event: Sendable {
  case exchange(HTTPExchange)
  /// A record we could not decode; counted, never fatal.
  case malformed(size: Int)
}

/// What the L7 tracer's kernel side counted, summed over CPUs.
public struct L7Counters: Sendable, Equatable {
  public var exchanges: UInt64 = 0
  /// Exchange records lost because the ring buffer was full.
  public var eventsLost: UInt64 = 0
  /// Connections not tracked because the connection map was full.
  public var connectionMapFull: UInt64 = 0
  /// Spans that could not be published to traces_ctx_v1.
  public var activeSpanMapFull: UInt64 = 0
  /// Tracked connections whose first bytes were not HTTP/1.x.
  public var notHTTP: UInt64 = 0
  /// `traceparent` headers rejected as malformed.
  public var rejectedTraceparents: UInt64 = 0
  public var targetsFull: UInt64 = 0
  /// Request heads that did not end within the tracer's bound (8 KiB): a `traceparent` past it is not seen.
  public var headsTooLong: UInt64 = 0
  /// Pipelined requests not followed: past the depth (128 read ahead of their responses), past what one
  /// read is looked at for, or unanswered when their connection closed.
  public var pipelinedNotFollowed: UInt64 = 0
  /// Request lines cut at 128 bytes before their '?' or end (the span's path is truncated).
  public var requestLinesCut: UInt64 = 0

  public init() {}
}
