/// Which side of a connection the traced process is on; the raw values are OTLP's `SpanKind` numbers.
public enum SpanKind: Int, Sendable, Equatable, Hashable {
  /// The process accepted the connection and answered the request (SPAN_KIND_SERVER).
  case server = 2
  /// The process connected and sent the request (SPAN_KIND_CLIENT).
  case client = 3

  /// The word the agent's store and API use.
  public var name: String { self == .server ? "server" : "client" }

  public init?(name: String) {
    switch name {
    case "server": self = .server
    case "client": self = .client
    default: return nil
    }
  }
}

/// One HTTP/1.x request and its response on one connection, as the kernel reported them: the only form an
/// exchange takes between the BPF decoder and `HTTPSpan`. Only what the tracer lets out is here: the
/// request line (cut at the query string), status, sizes, addresses, times and ids.
public struct HTTPExchange: Sendable, Equatable {
  /// Why the kernel side considered an exchange finished.
  public enum EndReason: Sendable, Equatable {
    case nextRead
    case nextRequest
    case close
    case fdReused
    /// The response was complete by its Content-Length or last chunk.
    case complete
    case unknown(UInt8)
  }

  public var kind: SpanKind
  public var pid: Int32
  public var tid: Int32
  public var fd: Int32
  /// Tells apart connections that reused the same fd.
  public var connectionGeneration: UInt64
  /// CLOCK_MONOTONIC nanoseconds (see `KernelClock`). For server exchanges every CPU sample that carried
  /// this span lies inside.
  public var startMonotonicNanos: UInt64
  public var endMonotonicNanos: UInt64
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
  /// "METHOD target" or "METHOD target HTTP/1.1", raw bytes from the wire, at most 128; parse it with
  /// `RequestLine.parse`.
  public var requestLine: [UInt8]
  /// Dotted IPv4 or IPv6 text; empty when unknown.
  public var peerAddress: String
  public var peerPort: Int
  public var localPort: Int
  public var endReason: EndReason

  public init(
    kind: SpanKind, pid: Int32, tid: Int32, fd: Int32 = -1, connectionGeneration: UInt64 = 0,
    startMonotonicNanos: UInt64, endMonotonicNanos: UInt64, traceID: [UInt8], spanID: [UInt8],
    parentSpanID: [UInt8]?, contextFromHeader: Bool = false, rejectedTraceparent: Bool = false,
    status: Int?, bytesIn: UInt64, bytesOut: UInt64, requestLine: [UInt8], peerAddress: String,
    peerPort: Int, localPort: Int, endReason: EndReason = .complete
  ) {
    self.kind = kind
    self.pid = pid
    self.tid = tid
    self.fd = fd
    self.connectionGeneration = connectionGeneration
    self.startMonotonicNanos = startMonotonicNanos
    self.endMonotonicNanos = endMonotonicNanos
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
