import FlamespanModel

/// Writes spans as one OTLP/JSON `ExportTraceServiceRequest` (opentelemetry-proto
/// `collector/trace/v1`): one `resourceSpans` per process, ids as lowercase hex (OTLP/JSON's exception to
/// protobuf JSON's base64), 64-bit integers as decimal strings, enums as integers.
public enum OTLPTraceJSON {
  public struct Resource: Sendable {
    public var serviceName: String
    public var hostName: String

    public init(serviceName: String, hostName: String) {
      self.serviceName = serviceName
      self.hostName = hostName
    }
  }

  /// `processNames` gives each pid's `process.executable.name`; `service.name` falls back to it.
  public static func encode(
    _ spans: [HTTPSpan], hostName: String, processNames: [Int32: String] = [:],
    scopeVersion: String = "0.1.0"
  ) -> String {
    var json = JSONText()
    json.raw("{\"resourceSpans\":[")
    let byProcess = Dictionary(grouping: spans, by: \.pid).sorted { $0.key < $1.key }
    for (index, (pid, processSpans)) in byProcess.enumerated() {
      if index > 0 { json.raw(",") }
      let name = processNames[pid] ?? "unknown_service:pid\(pid)"
      json.raw("{\"resource\":{\"attributes\":[")
      json.attribute("service.name", string: name, first: true)
      json.attribute("host.name", string: hostName)
      json.attribute("process.pid", int: Int64(pid))
      if let executable = processNames[pid] {
        json.attribute("process.executable.name", string: executable)
      }
      json.raw("]},\"scopeSpans\":[{\"scope\":{\"name\":\"flamespan\",\"version\":")
      json.string(scopeVersion)
      json.raw("},\"spans\":[")
      for (spanIndex, span) in processSpans.sorted(by: { $0.startUnixNanos < $1.startUnixNanos })
        .enumerated()
      {
        if spanIndex > 0 { json.raw(",") }
        encode(span, into: &json)
      }
      json.raw("]}]}")
    }
    json.raw("]}")
    return json.text
  }

  static func encode(_ span: HTTPSpan, into json: inout JSONText) {
    json.raw("{\"traceId\":\"\(HexCoding.encode(span.traceID))\"")
    json.raw(",\"spanId\":\"\(HexCoding.encode(span.spanID))\"")
    if let parent = span.parentSpanID {
      json.raw(",\"parentSpanId\":\"\(HexCoding.encode(parent))\"")
    }
    json.raw(",\"name\":")
    json.string(span.name)
    json.raw(",\"kind\":\(span.kind.rawValue)")
    json.raw(",\"startTimeUnixNano\":\"\(span.startUnixNanos)\"")
    json.raw(",\"endTimeUnixNano\":\"\(span.endUnixNanos)\"")
    json.raw(",\"attributes\":[")
    json.attribute("http.request.method", string: span.method, first: true)
    json.attribute("url.path", string: span.path)
    if let status = span.status { json.attribute("http.response.status_code", int: Int64(status)) }
    json.attribute("server.port", int: Int64(span.serverPort))
    if !span.peerAddress.isEmpty {
      json.attribute("network.peer.address", string: span.peerAddress)
      json.attribute("network.peer.port", int: Int64(span.peerPort))
    }
    json.attribute("thread.id", int: Int64(span.tid))
    json.attribute("process.pid", int: Int64(span.pid))
    json.raw("]")
    // STATUS_CODE_ERROR = 2; unset (0) otherwise, as the HTTP conventions ask for non-error responses.
    json.raw(span.isError ? ",\"status\":{\"code\":2}" : ",\"status\":{}")
    json.raw("}")
  }
}

/// Just enough JSON writing for OTLP: strings escaped per RFC 8259.
struct JSONText {
  private(set) var text = ""

  mutating func raw(_ fragment: String) { text += fragment }

  mutating func string(_ value: String) {
    text += "\""
    for scalar in value.unicodeScalars {
      switch scalar {
      case "\"": text += "\\\""
      case "\\": text += "\\\\"
      case "\n": text += "\\n"
      case "\r": text += "\\r"
      case "\t": text += "\\t"
      case let control where control.value < 0x20:
        let hex = String(control.value, radix: 16)
        text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
      default: text.unicodeScalars.append(scalar)
      }
    }
    text += "\""
  }

  mutating func attribute(_ key: String, string value: String, first: Bool = false) {
    if !first { raw(",") }
    raw("{\"key\":")
    string(key)
    raw(",\"value\":{\"stringValue\":")
    string(value)
    raw("}}")
  }

  mutating func attribute(_ key: String, int value: Int64, first: Bool = false) {
    if !first { raw(",") }
    raw("{\"key\":")
    string(key)
    raw(",\"value\":{\"intValue\":\"\(value)\"}}")
  }
}
