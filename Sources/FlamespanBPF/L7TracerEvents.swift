import FlamespanModel

/// Which side of the connection the traced process is on.
public enum L7Role: Sendable, Equatable {
  /// The process accepted the connection and answered the request.
  case server
  /// The process connected and sent the request.
  case client
}

/// Why the kernel side considered an exchange finished.
public enum L7EndReason: Sendable, Equatable {
  case nextRead
  case nextRequest
  case close
  case fdReused
  /// The response was complete by its Content-Length or last chunk.
  case complete
  case unknown(UInt8)
}

/// One HTTP/1.x request and its response on one connection, as the kernel saw them. Only what the tracer
/// lets out is here: the request line (cut at the query string), status, sizes, addresses, times, ids.
public struct L7Exchange: Sendable, Equatable {
  public var role: L7Role
  public var pid: Int32
  public var tid: Int32
  public var fd: Int32
  /// Tells apart connections that reused the same fd.
  public var connectionGeneration: UInt64
  /// CLOCK_MONOTONIC nanoseconds. For server exchanges every CPU sample that carried this span lies inside.
  public var startNanos: UInt64
  public var endNanos: UInt64
  public var traceID: [UInt8]
  public var spanID: [UInt8]
  public var parentSpanID: [UInt8]?
  /// The trace id and parent came from the request's `traceparent` header.
  public var contextFromHeader: Bool
  /// A `traceparent` header was present but malformed, so it was ignored.
  public var rejectedTraceparent: Bool
  /// nil when no status line was seen.
  public var status: Int?
  public var bytesIn: UInt64
  public var bytesOut: UInt64
  /// "METHOD /path" or "METHOD /path HTTP/1.1", raw bytes from the wire, at most 128.
  public var requestLine: [UInt8]
  /// Dotted IPv4 or IPv6 text; empty when unknown.
  public var peerAddress: String
  public var peerPort: Int
  public var localPort: Int
  public var endReason: L7EndReason

  public init(
    role: L7Role, pid: Int32, tid: Int32, fd: Int32, connectionGeneration: UInt64,
    startNanos: UInt64, endNanos: UInt64, traceID: [UInt8], spanID: [UInt8],
    parentSpanID: [UInt8]?, contextFromHeader: Bool, rejectedTraceparent: Bool, status: Int?,
    bytesIn: UInt64, bytesOut: UInt64, requestLine: [UInt8], peerAddress: String, peerPort: Int,
    localPort: Int, endReason: L7EndReason
  ) {
    self.role = role
    self.pid = pid
    self.tid = tid
    self.fd = fd
    self.connectionGeneration = connectionGeneration
    self.startNanos = startNanos
    self.endNanos = endNanos
    self.traceID = traceID
    self.spanID = spanID
    self.parentSpanID = parentSpanID
    self.contextFromHeader = contextFromHeader
    self.rejectedTraceparent = rejectedTraceparent
    self.status = status
    self.bytesIn = bytesIn
    self.bytesOut = bytesOut
    self.requestLine = requestLine
    self.peerAddress = peerAddress
    self.peerPort = peerPort
    self.localPort = localPort
    self.endReason = endReason
  }
}

public enum L7Event: Sendable {
  case exchange(L7Exchange)
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
