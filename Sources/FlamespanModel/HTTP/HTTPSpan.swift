/// One HTTP exchange as an OpenTelemetry span: what `record` writes, `drill` and `spans` read, the agent
/// stores, lists and exports.
public struct HTTPSpan: Sendable, Equatable {
  /// 16 bytes, not all zero.
  public var traceID: [UInt8]
  /// 8 bytes, not all zero.
  public var spanID: [UInt8]
  public var parentSpanID: [UInt8]?
  public var kind: SpanKind
  public var method: String
  /// Without the query string; `*` or `host:port` for the request forms that have no path.
  public var path: String
  /// The host named in an absolute-form or authority-form request target, when there was one.
  public var host: String?
  /// nil when no response was seen.
  public var status: Int?
  public var startUnixNanos: Int64
  public var endUnixNanos: Int64
  public var pid: Int32
  public var tid: Int32
  /// Empty when unknown.
  public var peerAddress: String
  public var peerPort: Int
  /// The server's port: local for server spans, the peer's for client spans.
  public var serverPort: Int
  public var bytesIn: UInt64
  public var bytesOut: UInt64
  /// CPU samples taken on the span's thread while it was active; nil when nobody counted them (`record`
  /// labels the samples instead).
  public var cpuSamples: Int64?

  public init(
    traceID: [UInt8], spanID: [UInt8], parentSpanID: [UInt8]?, kind: SpanKind, method: String,
    path: String, host: String? = nil, status: Int?, startUnixNanos: Int64, endUnixNanos: Int64,
    pid: Int32, tid: Int32, peerAddress: String, peerPort: Int, serverPort: Int,
    bytesIn: UInt64 = 0, bytesOut: UInt64 = 0, cpuSamples: Int64? = nil
  ) {
    self.traceID = traceID
    self.spanID = spanID
    self.parentSpanID = parentSpanID
    self.kind = kind
    self.method = method
    self.path = path
    self.host = host
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
    self.cpuSamples = cpuSamples
  }

  /// The span of an exchange, or nil when its ids are not valid W3C ids, its times run backwards or its
  /// request line does not parse. `requestLine` passes a line parsed already (callers cache them: a busy
  /// server repeats a few lines thousands of times a second).
  public init?(exchange: HTTPExchange, clock: KernelClock, requestLine: RequestLine? = nil) {
    guard SpanID.isValidTraceID(exchange.traceID), SpanID.isValidSpanID(exchange.spanID),
      exchange.parentSpanID.map(SpanID.isValidSpanID) ?? true,
      exchange.endMonotonicNanos >= exchange.startMonotonicNanos,
      let line = requestLine ?? RequestLine.parse(exchange.requestLine)
    else { return nil }
    self.init(
      traceID: exchange.traceID, spanID: exchange.spanID, parentSpanID: exchange.parentSpanID,
      kind: exchange.kind, method: line.method, path: line.path, host: line.host,
      status: exchange.status.flatMap { (100...599).contains($0) ? $0 : nil },
      startUnixNanos: clock.unixNanos(monotonic: exchange.startMonotonicNanos),
      endUnixNanos: clock.unixNanos(monotonic: exchange.endMonotonicNanos),
      pid: exchange.pid, tid: exchange.tid, peerAddress: exchange.peerAddress,
      peerPort: exchange.peerPort,
      serverPort: exchange.kind == .server ? exchange.localPort : exchange.peerPort,
      bytesIn: exchange.bytesIn, bytesOut: exchange.bytesOut)
  }

  /// `METHOD /path`, the name OTel HTTP conventions give a span when no route template is known.
  public var name: String { "\(method) \(path)" }

  public var durationNanos: Int64 { endUnixNanos &- startUnixNanos }

  /// Server spans are errors for 5xx only (4xx is the caller's fault); client spans for 4xx and 5xx.
  public var isError: Bool {
    guard let status else { return false }
    return kind == .server ? status >= 500 : status >= 400
  }
}

/// The agent's store keeps one JSON object per line, written by earlier versions with ids as lowercase hex
/// and the kind as a word; `bytesIn`, `bytesOut` and `host` came later and may be missing.
extension HTTPSpan: Codable {
  private enum CodingKeys: String, CodingKey {
    case traceID, spanID, parentSpanID, kind, method, path, host, status, startUnixNanos
    case endUnixNanos, pid, tid, peerAddress, peerPort, serverPort, bytesIn, bytesOut, cpuSamples
  }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    func id(_ key: CodingKeys, length: Int) throws -> [UInt8] {
      let text = try container.decode(String.self, forKey: key)
      guard let bytes = HexCoding.decode(text), bytes.count == length else {
        throw DecodingError.dataCorruptedError(
          forKey: key, in: container, debugDescription: "not \(length) bytes of hex: \(text)")
      }
      return bytes
    }
    traceID = try id(.traceID, length: SpanID.traceIDLength)
    spanID = try id(.spanID, length: SpanID.spanIDLength)
    parentSpanID =
      try container.contains(.parentSpanID) && !container.decodeNil(forKey: .parentSpanID)
      ? id(.parentSpanID, length: SpanID.spanIDLength) : nil
    let kindName = try container.decode(String.self, forKey: .kind)
    guard let kind = SpanKind(name: kindName) else {
      throw DecodingError.dataCorruptedError(
        forKey: .kind, in: container,
        debugDescription: "kind is neither server nor client: \(kindName)")
    }
    self.kind = kind
    method = try container.decode(String.self, forKey: .method)
    path = try container.decode(String.self, forKey: .path)
    host = try container.decodeIfPresent(String.self, forKey: .host)
    status = try container.decodeIfPresent(Int.self, forKey: .status)
    startUnixNanos = try container.decode(Int64.self, forKey: .startUnixNanos)
    endUnixNanos = try container.decode(Int64.self, forKey: .endUnixNanos)
    pid = try container.decode(Int32.self, forKey: .pid)
    tid = try container.decode(Int32.self, forKey: .tid)
    peerAddress = try container.decode(String.self, forKey: .peerAddress)
    peerPort = try container.decode(Int.self, forKey: .peerPort)
    serverPort = try container.decode(Int.self, forKey: .serverPort)
    bytesIn = try container.decodeIfPresent(UInt64.self, forKey: .bytesIn) ?? 0
    bytesOut = try container.decodeIfPresent(UInt64.self, forKey: .bytesOut) ?? 0
    cpuSamples = try container.decodeIfPresent(Int64.self, forKey: .cpuSamples)
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(HexCoding.encode(traceID), forKey: .traceID)
    try container.encode(HexCoding.encode(spanID), forKey: .spanID)
    try container.encodeIfPresent(parentSpanID.map { HexCoding.encode($0) }, forKey: .parentSpanID)
    try container.encode(kind.name, forKey: .kind)
    try container.encode(method, forKey: .method)
    try container.encode(path, forKey: .path)
    try container.encodeIfPresent(host, forKey: .host)
    try container.encodeIfPresent(status, forKey: .status)
    try container.encode(startUnixNanos, forKey: .startUnixNanos)
    try container.encode(endUnixNanos, forKey: .endUnixNanos)
    try container.encode(pid, forKey: .pid)
    try container.encode(tid, forKey: .tid)
    try container.encode(peerAddress, forKey: .peerAddress)
    try container.encode(peerPort, forKey: .peerPort)
    try container.encode(serverPort, forKey: .serverPort)
    try container.encode(bytesIn, forKey: .bytesIn)
    try container.encode(bytesOut, forKey: .bytesOut)
    try container.encodeIfPresent(cpuSamples, forKey: .cpuSamples)
  }
}
