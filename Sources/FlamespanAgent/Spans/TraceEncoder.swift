import FlamespanModel

/// Writes spans as an OTLP `ExportTraceServiceRequest` (opentelemetry-proto `collector/trace/v1`) in
/// protobuf. The message is small and stable, so it is written field by field here rather than generated:
/// the generated code in FlamespanOTLP covers profiles only.
enum TraceEncoder {
  static func encode(
    _ groups: [(resource: [(key: String, value: ResourceValue)], spans: [AgentSpan])]
  )
    -> [UInt8]
  {
    var request = ProtoBytes()
    for group in groups where !group.spans.isEmpty {
      var resource = ProtoBytes()
      for (key, value) in group.resource { resource.message(1, keyValue(key, value)) }
      var scope = ProtoBytes()
      var instrumentation = ProtoBytes()
      instrumentation.string(1, "flamespan")
      scope.message(1, instrumentation)
      for span in group.spans { scope.message(2, encode(span)) }
      var resourceSpans = ProtoBytes()
      resourceSpans.message(1, resource)
      resourceSpans.message(2, scope)
      request.message(1, resourceSpans)
    }
    return request.bytes
  }

  static func encode(_ span: AgentSpan) -> ProtoBytes {
    var out = ProtoBytes()
    out.bytes(1, HexCoding.decodeOrEmpty(span.traceID))
    out.bytes(2, HexCoding.decodeOrEmpty(span.spanID))
    if let parent = span.parentSpanID { out.bytes(4, HexCoding.decodeOrEmpty(parent)) }
    out.string(5, span.name)
    out.varint(6, span.kind == "server" ? 2 : 3)
    out.fixed64(7, UInt64(clamping: span.startUnixNanos))
    out.fixed64(8, UInt64(clamping: span.endUnixNanos))
    var attributes: [(String, ResourceValue)] = [
      ("http.request.method", .string(span.method)),
      ("url.path", .string(span.path)),
      ("server.port", .int(Int64(span.serverPort))),
      ("thread.id", .int(Int64(span.tid))),
      ("flamespan.cpu.samples", .int(span.cpuSamples)),
    ]
    if let status = span.status {
      attributes.append(("http.response.status_code", .int(Int64(status))))
    }
    if !span.peerAddress.isEmpty {
      attributes.append(("network.peer.address", .string(span.peerAddress)))
      attributes.append(("network.peer.port", .int(Int64(span.peerPort))))
    }
    for (key, value) in attributes { out.message(9, keyValue(key, value)) }
    if span.isError {
      var status = ProtoBytes()
      status.varint(3, 2)
      out.message(15, status)
    }
    return out
  }

  private static func keyValue(_ key: String, _ value: ResourceValue) -> ProtoBytes {
    var any = ProtoBytes()
    switch value {
    case .string(let text): any.string(1, text)
    case .int(let number): any.varint(3, UInt64(bitPattern: number))
    }
    var pair = ProtoBytes()
    pair.string(1, key)
    pair.message(2, any)
    return pair
  }
}

/// Protobuf wire-format output, just the field kinds the trace messages need.
struct ProtoBytes {
  private(set) var bytes: [UInt8] = []

  private mutating func rawVarint(_ value: UInt64) {
    var value = value
    while value >= 0x80 {
      bytes.append(UInt8(value & 0x7F) | 0x80)
      value >>= 7
    }
    bytes.append(UInt8(value))
  }

  private mutating func tag(_ field: Int, _ wireType: UInt64) {
    rawVarint(UInt64(field) << 3 | wireType)
  }

  mutating func varint(_ field: Int, _ value: UInt64) {
    tag(field, 0)
    rawVarint(value)
  }

  mutating func fixed64(_ field: Int, _ value: UInt64) {
    tag(field, 1)
    for shift in stride(from: 0, to: 64, by: 8) {
      bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
    }
  }

  mutating func bytes(_ field: Int, _ value: [UInt8]) {
    tag(field, 2)
    rawVarint(UInt64(value.count))
    bytes.append(contentsOf: value)
  }

  mutating func string(_ field: Int, _ value: String) { bytes(field, Array(value.utf8)) }

  mutating func message(_ field: Int, _ value: ProtoBytes) { bytes(field, value.bytes) }
}

/// A resource or span attribute value.
enum ResourceValue: Sendable, Hashable {
  case string(String)
  case int(Int64)
}

extension HexCoding {
  static func decodeOrEmpty(_ text: String) -> [UInt8] { decode(text) ?? [] }
}
