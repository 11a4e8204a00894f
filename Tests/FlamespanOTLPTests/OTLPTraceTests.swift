import FlamespanModel
import FlamespanOTLP
import FlamespanTestSupport
import Foundation
import Testing

/// The one trace encoder: its protobuf and OTLP/JSON forms, read back by the reference decoder.
@Suite struct OTLPTraceTests {
  static let trace: [UInt8] = Array(1...16)
  static let server: [UInt8] = [9, 8, 7, 6, 5, 4, 3, 2]
  static let client: [UInt8] = [2, 2, 2, 2, 2, 2, 2, 2]
  static let parent: [UInt8] = [1, 1, 2, 3, 5, 8, 13, 21]

  static let spans = [
    HTTPSpan(
      traceID: trace, spanID: server, parentSpanID: parent, kind: .server, method: "GET",
      path: "/orders", status: 503, startUnixNanos: 1_700_000_000_000_001_000,
      endUnixNanos: 1_700_000_000_000_005_000, pid: 42, tid: 43, peerAddress: "127.0.0.1",
      peerPort: 50_000, serverPort: 8080, bytesIn: 100, bytesOut: 200, cpuSamples: 7),
    HTTPSpan(
      traceID: trace, spanID: client, parentSpanID: server, kind: .client, method: "PURGE",
      path: "/pay\"quoted\\", host: "cache", status: 200, startUnixNanos: 1_700_000_000_000_002_000,
      endUnixNanos: 1_700_000_000_000_003_000, pid: 42, tid: 44, peerAddress: "",
      peerPort: 0, serverPort: 3128),
    HTTPSpan(
      traceID: Array(repeating: 0xab, count: 16), spanID: [3, 3, 3, 3, 3, 3, 3, 3],
      parentSpanID: nil, kind: .server, method: "POST", path: "/", status: nil,
      startUnixNanos: 5, endUnixNanos: 9, pid: 7, tid: 7, peerAddress: "::1", peerPort: 1,
      serverPort: 80),
  ]

  static var groups: [OTLPSpanGroup] {
    OTLPTraceEncoder.groupsByProcess(spans, hostName: "box", processNames: [42: "shop"])
  }

  @Test func everySpanCarriesTheOneAttributeSet() {
    let server = Dictionary(
      uniqueKeysWithValues: OTLPTraceEncoder.attributes(of: Self.spans[0]).map {
        ($0.key, $0.value)
      })
    #expect(
      server == [
        "http.request.method": .string("GET"), "url.path": .string("/orders"),
        "http.response.status_code": .int(503), "server.port": .int(8080),
        "network.peer.address": .string("127.0.0.1"), "network.peer.port": .int(50_000),
        "thread.id": .int(43), "process.pid": .int(42), "flamespan.cpu.samples": .int(7),
      ])
    let client = Dictionary(
      uniqueKeysWithValues: OTLPTraceEncoder.attributes(of: Self.spans[1]).map {
        ($0.key, $0.value)
      })
    #expect(client["server.address"] == .string("cache"))
    #expect(client["network.peer.address"] == nil && client["flamespan.cpu.samples"] == nil)
  }

  @Test func groupsByProcessWithRecordsResource() {
    let groups = Self.groups
    #expect(groups.map { $0.spans.count } == [1, 2])
    let shop = groups[1].attributes.map(\.key)
    #expect(shop == ["service.name", "host.name", "process.pid", "process.executable.name"])
    #expect(groups[0].attributes[0].value == .string("unknown_service:pid7"))
    #expect(groups[1].spans.map(\.spanID) == [Self.server, Self.client], "in start order")
  }

  @Test func otlpJSONWritesHexIdsDecimalStringsAndIntegerEnums() throws {
    let text = OTLPTraceEncoder.json(Self.groups, scopeVersion: "0.1.0")
    let document = try #require(
      JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    let resources = try #require(document["resourceSpans"] as? [[String: Any]])
    let scope = try #require((resources[1]["scopeSpans"] as? [[String: Any]])?.first)
    #expect((scope["scope"] as? [String: Any])?["version"] as? String == "0.1.0")
    let spans = try #require(scope["spans"] as? [[String: Any]])
    let server = try #require(spans.first { ($0["kind"] as? Int) == 2 })
    #expect(server["traceId"] as? String == HexCoding.encode(Self.trace))
    #expect(server["spanId"] as? String == HexCoding.encode(Self.server))
    #expect(server["parentSpanId"] as? String == HexCoding.encode(Self.parent))
    #expect(server["startTimeUnixNano"] as? String == "1700000000000001000")
    #expect((server["status"] as? [String: Any])?["code"] as? Int == 2)
    let client = try #require(spans.first { ($0["kind"] as? Int) == 3 })
    #expect(client["name"] as? String == "PURGE /pay\"quoted\\")
    #expect((client["status"] as? [String: Any])?["code"] == nil)
  }

  func decode(_ form: String, _ bytes: [UInt8]) throws -> [String: Any] {
    let directory = try TemporaryDirectory("traces")
    let path = directory.file("traces.\(form)")
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    let result = try PythonOTLP.run(script: "decode_traces.py", [form, path])
    #expect(result.status == 0, "decoder reported problems: \(result.stdout) \(result.stderr)")
    let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
    return try #require(json as? [String: Any], "not a JSON object: \(result.stdout)")
  }

  @Test(.requires(.pythonOTLP)) func theReferenceDecoderReadsBothFormsAlike() throws {
    let protobuf = try decode(
      "protobuf", OTLPTraceEncoder.protobuf(Self.groups, scopeVersion: "0.1.0"))
    let json = try decode(
      "json", Array(OTLPTraceEncoder.json(Self.groups, scopeVersion: "0.1.0").utf8))
    #expect(NSDictionary(dictionary: protobuf).isEqual(to: json), "\(protobuf)\n\(json)")

    let resources = try #require(protobuf["resource_spans"] as? [[String: Any]])
    #expect(resources.count == 2)
    let resource = try #require(resources[1]["resource"] as? [String: Any])
    #expect(resource["service.name"] as? String == "shop")
    #expect(resource["host.name"] as? String == "box")
    #expect((resource["process.pid"] as? NSNumber)?.intValue == 42)
    let scope = try #require((resources[1]["scope_spans"] as? [[String: Any]])?.first)
    #expect(scope["scope"] as? String == "flamespan")
    let spans = try #require(scope["spans"] as? [[String: Any]])
    #expect(spans.count == 2)
    let server = spans[0]
    #expect(server["trace_id"] as? String == HexCoding.encode(Self.trace))
    #expect(server["span_id"] as? String == HexCoding.encode(Self.server))
    #expect(server["parent_span_id"] as? String == HexCoding.encode(Self.parent))
    #expect(server["name"] as? String == "GET /orders")
    #expect((server["kind"] as? NSNumber)?.intValue == 2)
    #expect((server["start_time_unix_nano"] as? NSNumber)?.int64Value == 1_700_000_000_000_001_000)
    #expect((server["end_time_unix_nano"] as? NSNumber)?.int64Value == 1_700_000_000_000_005_000)
    #expect((server["status_code"] as? NSNumber)?.intValue == 2)
    let attributes = try #require(server["attributes"] as? [String: Any])
    #expect(attributes["http.request.method"] as? String == "GET")
    #expect(attributes["url.path"] as? String == "/orders")
    #expect((attributes["http.response.status_code"] as? NSNumber)?.intValue == 503)
    #expect((attributes["flamespan.cpu.samples"] as? NSNumber)?.intValue == 7)
    let client = spans[1]
    #expect((client["kind"] as? NSNumber)?.intValue == 3)
    #expect((client["status_code"] as? NSNumber)?.intValue == 0)
    let clientAttributes = try #require(client["attributes"] as? [String: Any])
    #expect(clientAttributes["server.address"] as? String == "cache")
    let root = try #require((resources[0]["scope_spans"] as? [[String: Any]])?.first)
    let rootSpan = try #require((root["spans"] as? [[String: Any]])?.first)
    #expect(rootSpan["parent_span_id"] is NSNull)
  }

  @Test func writesTheJSONFileAtomically() throws {
    let directory = try TemporaryDirectory("traces-file")
    let path = directory.file("spans.json")
    try OTLPTraceEncoder.writeJSON(Self.groups, to: path)
    let written = try String(contentsOfFile: path, encoding: .utf8)
    #expect(written == OTLPTraceEncoder.json(Self.groups))
    #expect(throws: AtomicFileError.self) {
      try OTLPTraceEncoder.writeJSON(Self.groups, to: directory.file("missing/spans.json"))
    }
  }
}
