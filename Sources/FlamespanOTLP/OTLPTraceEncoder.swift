import FlamespanModel
import Foundation
import SwiftProtobuf

/// One resource (for Flamespan: one process) and its spans.
public struct OTLPSpanGroup: Sendable {
  /// Key and value pairs in the order they are written, such as `service.name` and `process.pid`.
  public var attributes: [(key: String, value: OTLPResourceValue)]
  public var spans: [HTTPSpan]

  public init(attributes: [(key: String, value: OTLPResourceValue)], spans: [HTTPSpan]) {
    self.attributes = attributes
    self.spans = spans
  }
}

/// Writes spans as one OTLP `ExportTraceServiceRequest` (opentelemetry-proto `collector/trace/v1`), in
/// protobuf for the agent's exports and in OTLP/JSON for `record --spans-output`. Both carry the same
/// attributes, from `attributes(of:)`.
public enum OTLPTraceEncoder {
  /// The span attributes, OpenTelemetry HTTP semantic-convention names wherever one exists.
  public static func attributes(of span: HTTPSpan) -> [(key: String, value: OTLPResourceValue)] {
    var attributes: [(key: String, value: OTLPResourceValue)] = [
      ("http.request.method", .string(span.method)),
      ("url.path", .string(span.path)),
    ]
    if let status = span.status {
      attributes.append(("http.response.status_code", .int(Int64(status))))
    }
    if let host = span.host { attributes.append(("server.address", .string(host))) }
    attributes.append(("server.port", .int(Int64(span.serverPort))))
    if !span.peerAddress.isEmpty {
      attributes.append(("network.peer.address", .string(span.peerAddress)))
      attributes.append(("network.peer.port", .int(Int64(span.peerPort))))
    }
    attributes.append((OTLPAttribute.threadID, .int(Int64(span.tid))))
    attributes.append((OTLPAttribute.processID, .int(Int64(span.pid))))
    if let samples = span.cpuSamples {
      attributes.append((OTLPAttribute.spanCPUSamples, .int(samples)))
    }
    return attributes
  }

  /// One group per process, spans in start order, with the resource `record` gives them: `service.name`
  /// (the executable's name, or OTel's `unknown_service:…` form), `host.name`, `process.pid` and
  /// `process.executable.name` when known.
  public static func groupsByProcess(
    _ spans: [HTTPSpan], hostName: String, processNames: [Int32: String] = [:]
  ) -> [OTLPSpanGroup] {
    Dictionary(grouping: spans, by: \.pid).sorted { $0.key < $1.key }.map { pid, processSpans in
      var attributes: [(key: String, value: OTLPResourceValue)] = [
        (OTLPAttribute.serviceName, .string(processNames[pid] ?? "unknown_service:pid\(pid)")),
        (OTLPAttribute.hostName, .string(hostName)),
        (OTLPAttribute.processID, .int(Int64(pid))),
      ]
      if let executable = processNames[pid] {
        attributes.append(("process.executable.name", .string(executable)))
      }
      return OTLPSpanGroup(
        attributes: attributes,
        spans: processSpans.sorted { $0.startUnixNanos < $1.startUnixNanos })
    }
  }

  // MARK: protobuf

  public static func protobuf(_ groups: [OTLPSpanGroup], scopeVersion: String? = nil)
    throws(OTLPError) -> [UInt8]
  {
    var request = ProtoTraceRequest()
    for group in groups where !group.spans.isEmpty {
      var scope = ProtoScopeSpans()
      scope.scope.name = OTLPProfileEncoder.scopeName
      if let scopeVersion { scope.scope.version = scopeVersion }
      scope.spans = group.spans.map(protobufSpan)
      var resourceSpans = ProtoResourceSpans()
      resourceSpans.resource.attributes = group.attributes.map(keyValue)
      resourceSpans.scopeSpans = [scope]
      request.resourceSpans.append(resourceSpans)
    }
    do {
      return try request.serializedBytes()
    } catch {
      throw OTLPError(code: .encodingFailed, message: "protobuf serialization failed: \(error)")
    }
  }

  static func protobufSpan(_ span: HTTPSpan) -> ProtoSpan {
    var out = ProtoSpan()
    out.traceID = Data(span.traceID)
    out.spanID = Data(span.spanID)
    if let parent = span.parentSpanID { out.parentSpanID = Data(parent) }
    out.name = span.name
    out.kind = span.kind == .server ? .server : .client
    out.startTimeUnixNano = UInt64(clamping: span.startUnixNanos)
    out.endTimeUnixNano = UInt64(clamping: span.endUnixNanos)
    out.attributes = attributes(of: span).map(keyValue)
    // Unset unless an error, as the HTTP conventions ask for responses that are not errors.
    if span.isError { out.status.code = .error }
    return out
  }

  static func keyValue(_ pair: (key: String, value: OTLPResourceValue)) -> ProtoKeyValue {
    var keyValue = ProtoKeyValue()
    keyValue.key = pair.key
    switch pair.value {
    case .string(let text): keyValue.value = .string(text)
    case .int(let number): keyValue.value = .int(number)
    }
    return keyValue
  }

  // MARK: OTLP/JSON

  /// OTLP/JSON differs from protobuf's JSON mapping where swift-protobuf cannot be told: ids are lowercase
  /// hex (not base64), enums integers, 64-bit integers decimal strings. So this side writes the text
  /// itself, from the same attribute list.
  public static func json(_ groups: [OTLPSpanGroup], scopeVersion: String? = nil) -> String {
    var json = JSONText()
    json.raw("{\"resourceSpans\":[")
    for (index, group) in groups.filter({ !$0.spans.isEmpty }).enumerated() {
      if index > 0 { json.raw(",") }
      json.raw("{\"resource\":{\"attributes\":")
      attributes(group.attributes, into: &json)
      json.raw("},\"scopeSpans\":[{\"scope\":{\"name\":")
      json.string(OTLPProfileEncoder.scopeName)
      if let scopeVersion {
        json.raw(",\"version\":")
        json.string(scopeVersion)
      }
      json.raw("},\"spans\":[")
      for (spanIndex, span) in group.spans.enumerated() {
        if spanIndex > 0 { json.raw(",") }
        jsonSpan(span, into: &json)
      }
      json.raw("]}]}")
    }
    json.raw("]}")
    return json.text
  }

  static func jsonSpan(_ span: HTTPSpan, into json: inout JSONText) {
    json.raw("{\"traceId\":\"\(HexCoding.encode(span.traceID))\"")
    json.raw(",\"spanId\":\"\(HexCoding.encode(span.spanID))\"")
    if let parent = span.parentSpanID {
      json.raw(",\"parentSpanId\":\"\(HexCoding.encode(parent))\"")
    }
    json.raw(",\"name\":")
    json.string(span.name)
    json.raw(",\"kind\":\(span.kind.rawValue)")
    json.raw(",\"startTimeUnixNano\":\"\(UInt64(clamping: span.startUnixNanos))\"")
    json.raw(",\"endTimeUnixNano\":\"\(UInt64(clamping: span.endUnixNanos))\"")
    json.raw(",\"attributes\":")
    attributes(attributes(of: span), into: &json)
    // STATUS_CODE_ERROR = 2.
    json.raw(span.isError ? ",\"status\":{\"code\":2}" : ",\"status\":{}")
    json.raw("}")
  }

  private static func attributes(
    _ pairs: [(key: String, value: OTLPResourceValue)], into json: inout JSONText
  ) {
    json.raw("[")
    for (index, pair) in pairs.enumerated() {
      if index > 0 { json.raw(",") }
      json.raw("{\"key\":")
      json.string(pair.key)
      switch pair.value {
      case .string(let text):
        json.raw(",\"value\":{\"stringValue\":")
        json.string(text)
        json.raw("}}")
      case .int(let number):
        json.raw(",\"value\":{\"intValue\":\"\(number)\"}}")
      }
    }
    json.raw("]")
  }

  /// Writes the OTLP/JSON document to `path` atomically, so readers never see half a file.
  public static func writeJSON(
    _ groups: [OTLPSpanGroup], to path: String, scopeVersion: String? = nil
  ) throws(AtomicFileError) {
    try AtomicFile.write(Array(json(groups, scopeVersion: scopeVersion).utf8), to: path)
  }
}
