import FlamespanL7
import FlamespanModel
import Foundation
import Testing

@Suite struct SpanAssemblyTests {
  static let trace: [UInt8] = Array(1...16)
  static let span: [UInt8] = [9, 8, 7, 6, 5, 4, 3, 2]
  static let parent: [UInt8] = [1, 1, 2, 3, 5, 8, 13, 21]

  static func exchange(
    kind: SpanKind = .server, trace: [UInt8] = trace, span: [UInt8] = span,
    parent: [UInt8]? = parent, line: String = "GET /orders", status: Int? = 503
  ) -> HTTPExchange {
    HTTPExchange(
      kind: kind, pid: 42, tid: 43, startMonotonicNanos: 1_000, endMonotonicNanos: 5_000,
      traceID: trace, spanID: span, parentSpanID: parent, status: status, bytesIn: 100,
      bytesOut: 200, requestLine: Array(line.utf8), peerAddress: "127.0.0.1", peerPort: 50_000,
      localPort: 8080)
  }

  @Test func buildsSpansAndRejectsBogusIds() throws {
    var assembler = SpanAssembler(
      clock: KernelClock(monotonicToUnixNanos: 1_700_000_000_000_000_000))
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
    #expect(
      assembler.add(
        Self.exchange(span: [6, 6, 6, 6, 6, 6, 6, 6], parent: [0, 0, 0, 0, 0, 0, 0, 0]))
        == nil, "an all-zero parent id is not a W3C id")
    #expect(assembler.rejected == 5)
    #expect(assembler.spans.count == 1)
  }

  @Test func labelsSamplesWithTheSpanNameAndFinalTrace() {
    var assembler = SpanAssembler(clock: KernelClock(monotonicToUnixNanos: 0))
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
}

/// The span the agent stores must read back as it was, and lines written before `bytesIn`, `bytesOut` and
/// `host` existed must still read.
@Suite struct HTTPSpanCodingTests {
  @Test func aSpanRoundTripsThroughTheStoreJSON() throws {
    var assembler = SpanAssembler(clock: KernelClock(monotonicToUnixNanos: 7))
    let added = assembler.add(
      SpanAssemblyTests.exchange(line: "PURGE http://cache:8080/x?y HTTP/1.1"))
    let span = try #require(added)
    var counted = span
    counted.cpuSamples = 12
    for original in [span, counted] {
      let data = try JSONEncoder().encode(original)
      #expect(try JSONDecoder().decode(HTTPSpan.self, from: data) == original)
    }
    #expect(span.host == "cache" && span.path == "/x" && span.method == "PURGE")
  }

  @Test func readsTheLinesEarlierAgentsStored() throws {
    let line = """
      {"traceID":"0102030405060708090a0b0c0d0e0f10","spanID":"0908070605040302","kind":"client",\
      "method":"GET","path":"/a","status":404,"startUnixNanos":10,"endUnixNanos":25,"pid":42,\
      "tid":43,"peerAddress":"10.0.0.1","peerPort":80,"serverPort":80,"cpuSamples":3}
      """
    let span = try JSONDecoder().decode(HTTPSpan.self, from: Data(line.utf8))
    #expect(span.traceID == Array(1...16) && span.spanID == SpanAssemblyTests.span)
    #expect(span.parentSpanID == nil && span.kind == .client && span.isError)
    #expect(span.durationNanos == 15 && span.cpuSamples == 3 && span.bytesIn == 0)
  }

  @Test func refusesIdsThatAreNotHexOfTheirLength() {
    let line = """
      {"traceID":"0102","spanID":"0908070605040302","kind":"server","method":"GET","path":"/a",\
      "startUnixNanos":1,"endUnixNanos":2,"pid":1,"tid":1,"peerAddress":"","peerPort":0,"serverPort":80}
      """
    #expect(throws: DecodingError.self) {
      try JSONDecoder().decode(HTTPSpan.self, from: Data(line.utf8))
    }
  }
}
