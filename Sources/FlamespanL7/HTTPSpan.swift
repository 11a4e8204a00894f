/// One HTTP exchange as an OpenTelemetry span.
public struct HTTPSpan: Sendable, Equatable {
  public enum Kind: Int, Sendable {
    /// OTLP SPAN_KIND_SERVER
    case server = 2
    /// OTLP SPAN_KIND_CLIENT
    case client = 3
  }

  /// 16 bytes, not all zero.
  public var traceID: [UInt8]
  /// 8 bytes, not all zero.
  public var spanID: [UInt8]
  public var parentSpanID: [UInt8]?
  public var kind: Kind
  public var method: String
  /// Without the query string.
  public var path: String
  /// nil when no response was seen.
  public var status: Int?
  public var startUnixNanos: Int64
  public var endUnixNanos: Int64
  public var pid: Int32
  public var tid: Int32
  public var peerAddress: String
  public var peerPort: Int
  /// The server's port: local for server spans, the peer's for client spans.
  public var serverPort: Int
  public var bytesIn: UInt64
  public var bytesOut: UInt64

  public init(
    traceID: [UInt8], spanID: [UInt8], parentSpanID: [UInt8]?, kind: Kind, method: String,
    path: String, status: Int?, startUnixNanos: Int64, endUnixNanos: Int64, pid: Int32, tid: Int32,
    peerAddress: String, peerPort: Int, serverPort: Int, bytesIn: UInt64, bytesOut: UInt64
  ) {
    self.traceID = traceID
    self.spanID = spanID
    self.parentSpanID = parentSpanID
    self.kind = kind
    self.method = method
    self.path = path
    self.status = status
    self.startUnixNanos = startUnixNanos
    self.endUnixNanos = endUnixNanos
    self.pid = pid
    self.tid = tid
    self.peerAddress = peerAddress
    self.peerPort = peerPort
    self.serverPort = serverPort
    self.bytesIn = bytesIn
    self.bytesOut = bytesOut
  }

  /// `METHOD /path`, the name OTel HTTP conventions give a span when no route template is known.
  public var name: String { "\(method) \(path)" }

  /// Server spans are errors for 5xx only (4xx is the caller's fault); client spans for 4xx and 5xx.
  public var isError: Bool {
    guard let status else { return false }
    return kind == .server ? status >= 500 : status >= 400
  }
}
