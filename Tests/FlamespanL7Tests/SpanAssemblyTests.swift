import FlamespanL7
import FlamespanModel
import Foundation
import Testing

@Suite struct SpanAssemblyTests {
  static let trace: [UInt8] = Array(1...16)
  static let span: [UInt8] = [9, 8, 7, 6, 5, 4, 3, 2]
  static let parent: [UInt8] = [1, 1, 2, 3, 5, 8, 13, 21]

  static func exchange(
    kind: HTTPSpan.Kind = .server, trace: [UInt8] = trace, span: [UInt8] = span,
    parent: [UInt8]? = parent, line: String = "GET /orders", status: Int? = 503
  ) -> ObservedExchange {
    ObservedExchange(
      kind: kind, pid: 42, tid: 43, startMonotonicNanos: 1_000, endMonotonicNanos: 5_000,
      traceID: trace, spanID: span, parentSpanID: parent, status: status,
      requestLine: Array(line.utf8), peerAddress: "127.0.0.1", peerPort: 50_000, localPort: 8080,
      bytesIn: 100, bytesOut: 200)
  }

  @Test func buildsSpansAndRejectsBogusIds() throws {
    var assembler = SpanAssembler(realtimeOffsetNanos: 1_700_000_000_000_000_000)
    let added = assembler.add(Self.exchange())
    let span = try #require(added)
    #expect(span.name == "GET /orders")
    #expect(span.startUnixNanos == 1_700_000_000_000_001_000)
    #expect(span.isError && span.serverPort == 8080)
    #expect(assembler.add(Self.exchange()) == nil, "a span id is only taken once")
    #expect(
      assembler.add(
        Self.exchange(trace: Array(repeating: 0, count: 16), span: [1, 2, 3, 4, 5, 6, 7, 9])) == nil
    )
    #expect(assembler.add(Self.exchange(span: Array(repeating: 0, count: 8))) == nil)
    #expect(assembler.add(Self.exchange(span: [1, 2, 3])) == nil)
    #expect(
      assembler.add(Self.exchange(span: [7, 7, 7, 7, 7, 7, 7, 7], line: "\u{16}\u{03}garbage"))
        == nil)
    #expect(assembler.rejected == 4)
    #expect(assembler.spans.count == 1)
  }

  @Test func labelsSamplesWithTheSpanNameAndFinalTrace() {
    var assembler = SpanAssembler(realtimeOffsetNanos: 0)
    assembler.add(Self.exchange())
    let early = SpanContext(traceID: Array(repeating: 0xaa, count: 16), spanID: Self.span)
    let unknown = SpanContext(traceID: Self.trace, spanID: [1, 2, 3, 4, 5, 6, 7, 8])
    let samples = [early, unknown].map {
      ProfileSample(stack: [], pid: 42, tid: 43, threadName: "t", span: $0, count: 1)
    }
    let labelled = assembler.label(samples)
    #expect(
      labelled[0].span == SpanContext(traceID: Self.trace, spanID: Self.span, name: "GET /orders"))
    #expect(labelled[1].span == unknown)
  }

  @Test func otlpJSONHasTheFieldsOTLPJSONSpecifies() throws {
    var assembler = SpanAssembler(realtimeOffsetNanos: 10)
    assembler.add(Self.exchange())
    assembler.add(
      Self.exchange(
        kind: .client, span: [2, 2, 2, 2, 2, 2, 2, 2], parent: Self.span,
        line: "POST /pay\"quoted\\ HTTP/1.1", status: 200))
    let text = OTLPTraceJSON.encode(assembler.spans, hostName: "box", processNames: [42: "shop"])
    let document = try #require(
      JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    let resources = try #require(document["resourceSpans"] as? [[String: Any]])
    #expect(resources.count == 1)
    let scope = try #require((resources[0]["scopeSpans"] as? [[String: Any]])?.first)
    let spans = try #require(scope["spans"] as? [[String: Any]])
    #expect(spans.count == 2)
    let server = try #require(spans.first { ($0["kind"] as? Int) == 2 })
    #expect(server["traceId"] as? String == HexCoding.encode(Self.trace))
    #expect(server["spanId"] as? String == HexCoding.encode(Self.span))
    #expect(server["parentSpanId"] as? String == HexCoding.encode(Self.parent))
    #expect(server["name"] as? String == "GET /orders")
    #expect(server["startTimeUnixNano"] as? String == "1010")
    #expect(server["endTimeUnixNano"] as? String == "5010")
    #expect((server["status"] as? [String: Any])?["code"] as? Int == 2)
    let attributes = try #require(server["attributes"] as? [[String: Any]])
    var values: [String: String] = [:]
    for attribute in attributes {
      let value = attribute["value"] as? [String: String]
      values[attribute["key"] as! String] = value?["stringValue"] ?? value?["intValue"]
    }
    #expect(values["http.request.method"] == "GET")
    #expect(values["url.path"] == "/orders")
    #expect(values["http.response.status_code"] == "503")
    #expect(values["server.port"] == "8080")
    #expect(values["network.peer.address"] == "127.0.0.1")
    #expect(values["thread.id"] == "43")
    #expect(values["process.pid"] == "42")
    let client = try #require(spans.first { ($0["kind"] as? Int) == 3 })
    #expect(client["name"] as? String == "POST /pay\"quoted\\")
    #expect(client["parentSpanId"] as? String == HexCoding.encode(Self.span))
    #expect((client["status"] as? [String: Any])?["code"] == nil)
  }
}
