import FlamespanBPF
import FlamespanModel

/// One HTTP exchange the L7 tracer saw, as the agent stores, lists and exports it.
///
/// This mirrors `FlamespanL7.HTTPSpan`; once that module is a package target the agent should take its
/// spans from `SpanAssembler` instead of `init?(exchange:offset:)` below.
struct AgentSpan: Sendable, Codable, Equatable {
  var traceID: String
  var spanID: String
  var parentSpanID: String?
  /// "server" or "client".
  var kind: String
  var method: String
  /// Without the query string.
  var path: String
  var status: Int?
  var startUnixNanos: Int64
  var endUnixNanos: Int64
  var pid: Int32
  var tid: Int32
  var peerAddress: String
  var peerPort: Int
  var serverPort: Int
  /// CPU samples taken on the span's thread while it was active, in the window the span ended in.
  var cpuSamples: Int64

  var name: String { "\(method) \(path)" }
  var durationNanos: Int64 { endUnixNanos - startUnixNanos }
  var isError: Bool {
    guard let status else { return false }
    return kind == "server" ? status >= 500 : status >= 400
  }

  /// nil when the exchange has invalid ids or no parseable request line.
  init?(exchange: L7Exchange, monotonicToUnixNanos offset: Int64) {
    guard exchange.traceID.count == 16, exchange.spanID.count == 8,
      exchange.traceID.contains(where: { $0 != 0 }), exchange.spanID.contains(where: { $0 != 0 }),
      exchange.endNanos >= exchange.startNanos,
      let (method, path) = Self.parseRequestLine(exchange.requestLine)
    else { return nil }
    traceID = HexCoding.encode(exchange.traceID)
    spanID = HexCoding.encode(exchange.spanID)
    parentSpanID = exchange.parentSpanID.flatMap {
      $0.count == 8 && $0.contains(where: { $0 != 0 }) ? HexCoding.encode($0) : nil
    }
    kind = exchange.role == .server ? "server" : "client"
    self.method = method
    self.path = path
    status = exchange.status.flatMap { (100...599).contains($0) ? $0 : nil }
    startUnixNanos = Int64(clamping: exchange.startNanos) &+ offset
    endUnixNanos = Int64(clamping: exchange.endNanos) &+ offset
    pid = exchange.pid
    tid = exchange.tid
    peerAddress = exchange.peerAddress
    peerPort = exchange.peerPort
    serverPort = exchange.role == .server ? exchange.localPort : exchange.peerPort
    cpuSamples = 0
  }

  /// Method and path of "METHOD /path[?query] [HTTP/1.x]"; the query is cut, as it may hold secrets.
  static func parseRequestLine(_ bytes: [UInt8]) -> (String, String)? {
    let text = String(decoding: bytes, as: UTF8.self)
    let parts = text.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
    guard parts.count >= 2, parts[0].count <= 16, parts[0].allSatisfy({ $0.isUppercase }),
      parts[1].hasPrefix("/") || parts[1] == "*"
    else { return nil }
    let path = parts[1].prefix { $0 != "?" && $0 != "#" }
    return (String(parts[0]), String(path))
  }
}
