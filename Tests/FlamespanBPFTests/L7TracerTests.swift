import FlamespanBPF
import FlamespanModel
import FlamespanTestSupport
import Foundation
import Testing

/// Loads the real L7 tracer and sampler, sharing traces_ctx_v1, against samples/http_server on loopback.
@Suite(.serialized) struct L7TracerTests {
  static let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
  static let parentID = "00f067aa0ba902b7"

  /// Everything both ring buffers produced while `clients` ran one after another.
  struct Observation {
    var exchanges: [HTTPExchange] = []
    var samples: [RawSample] = []
    var counters = L7Counters()
  }

  static func observe(
    server: LoopbackServer, hooks: L7Hooks, frequency: Int = 997, clients: [[String]]
  ) throws -> Observation {
    let tracer = try L7Tracer(
      configuration: L7TracerConfiguration(pids: [server.pid], hooks: hooks))
    #expect(tracer.hooks == hooks)
    defer { tracer.close() }
    let sampler = try CPUSampler(
      configuration: SamplerConfiguration(
        frequency: frequency, pids: [server.pid], activeSpanMap: tracer.activeSpanMap))
    defer { sampler.close() }
    var observation = Observation()
    func drain(_ timeout: Int32) throws {
      try tracer.poll(timeoutMilliseconds: timeout) { event in
        if case .exchange(let exchange) = event { observation.exchanges.append(exchange) }
      }
      try sampler.poll(timeoutMilliseconds: 0) { event in
        if case .sample(let sample) = event { observation.samples.append(sample) }
      }
    }
    for arguments in clients {
      let client = try BackgroundProcess(arguments)
      let deadline = Date().addingTimeInterval(60)
      while client.isRunning && Date() < deadline { try drain(20) }
      _ = client.finish()
    }
    let settle = Date().addingTimeInterval(0.3)
    while Date() < settle { try drain(20) }
    observation.counters = tracer.counters()
    return observation
  }

  static func path(_ exchange: HTTPExchange) -> String {
    let line = String(decoding: exchange.requestLine, as: UTF8.self)
    let parts = line.split(separator: " ")
    return parts.count >= 2 ? String(parts[1]) : ""
  }

  /// Both sets of kernel hooks feed the same state machine; each must hold on its own.
  static let bothHooks: [L7Hooks] = [.socket, .syscalls]

  @Test(.requires(.bpf, .tool("curl")), arguments: bothHooks)
  func serverSpansTakeTheCallersTraceAndEverySpanSampleLiesInsideItsSpan(hooks: L7Hooks) throws {
    let bin = try TestEnvironment.buildSamples(into: TestEnvironment.temporaryDirectory("l7bpf"))
    let server = try LoopbackServer.httpServer(in: bin)
    defer { server.stop() }
    let base = "http://127.0.0.1:\(server.port)"
    let traced = "traceparent: 00-\(Self.traceID)-\(Self.parentID)-01"
    let observation = try Self.observe(
      server: server, hooks: hooks,
      clients: [
        // Keep-alive: four requests on one connection, all with the caller's context.
        ["curl", "-s", "-o", "/dev/null", "-H", traced]
          + Array(repeating: "\(base)/burn?ms=60&secret=1", count: 4),
        // No context: fresh trace ids.
        ["curl", "-s", "-o", "/dev/null"] + Array(repeating: "\(base)/burn?ms=60", count: 3),
        // Header name in another case is still the same header.
        [
          "curl", "-s", "-o", "/dev/null", "-H",
          "TraceParent: 00-\(Self.traceID)-\(Self.parentID)-00", "\(base)/fail",
        ],
        // Malformed and all-zero contexts are ignored, never propagated.
        [
          "curl", "-s", "-o", "/dev/null", "-H",
          "traceparent: 00-\(Self.traceID.uppercased())-\(Self.parentID)-01", "\(base)/light",
        ],
        [
          "curl", "-s", "-o", "/dev/null", "-H",
          "traceparent: 00-00000000000000000000000000000000-\(Self.parentID)-01", "\(base)/light",
        ],
        [
          "curl", "-s", "-o", "/dev/null", "-H",
          "traceparent: 00-\(Self.traceID)-0000000000000000-01", "\(base)/light",
        ],
        [
          "curl", "-s", "-o", "/dev/null", "-H", "traceparent: 00-\(Self.traceID)-\(Self.parentID)",
          "\(base)/light",
        ],
      ])

    let servers = observation.exchanges.filter { $0.kind == .server }
    let burns = servers.filter { Self.path($0) == "/burn" }
    #expect(burns.count == 7, "\(servers.map { Self.path($0) })")
    let withContext = burns.filter { $0.contextFromHeader }
    #expect(withContext.count == 4)
    for exchange in withContext {
      #expect(HexCoding.encode(exchange.traceID) == Self.traceID)
      #expect(exchange.parentSpanID.map(HexCoding.encode) == Self.parentID)
      #expect(exchange.status == 200)
      #expect(String(decoding: exchange.requestLine, as: UTF8.self) == "GET /burn")
      #expect(exchange.peerAddress == "127.0.0.1")
      #expect(exchange.localPort == server.port)
    }
    #expect(Set(withContext.map { $0.spanID }).count == 4, "each request gets its own span id")
    #expect(
      Set(withContext.map { $0.connectionGeneration }).count == 1, "one keep-alive connection")
    let fresh = burns.filter { !$0.contextFromHeader }
    #expect(fresh.count == 3)
    #expect(Set(fresh.map { $0.traceID }).count == 3)
    #expect(
      fresh.allSatisfy { $0.parentSpanID == nil && HexCoding.encode($0.traceID) != Self.traceID })
    let failure = servers.first { Self.path($0) == "/fail" }
    #expect(failure?.status == 500)
    #expect(failure.map { HexCoding.encode($0.traceID) } == Self.traceID)
    let lights = servers.filter { Self.path($0) == "/light" }
    #expect(lights.count == 4)
    #expect(lights.allSatisfy { $0.parentSpanID == nil && !$0.contextFromHeader })
    #expect(lights.allSatisfy { !$0.traceID.allSatisfy { $0 == 0 } })
    #expect(lights.allSatisfy { HexCoding.encode($0.traceID) != Self.traceID })
    #expect(lights.filter { $0.rejectedTraceparent }.count == 4)
    #expect(observation.counters.eventsLost == 0)

    // Precision: a sample carries a span only on that span's thread, inside [start, end].
    let bySpan = Dictionary(
      servers.map { ($0.spanID, $0) }, uniquingKeysWith: { first, _ in first })
    let labelled = observation.samples.filter { $0.span != nil }
    #expect(!labelled.isEmpty)
    for sample in labelled {
      guard let span = sample.span, let exchange = bySpan[span.spanID] else {
        Issue.record(
          "sample at \(sample.timeNanos) carries an unknown span \(sample.span!.spanIDHex)")
        continue
      }
      #expect(sample.tid == exchange.tid)
      #expect(
        exchange.startMonotonicNanos <= sample.timeNanos
          && sample.timeNanos <= exchange.endMonotonicNanos)
      #expect(span.traceID == exchange.traceID)
    }
    // Recall: request threads (not the accepting main thread) burn CPU almost only inside requests.
    let requestThreadSamples = observation.samples.filter {
      $0.pid == server.pid && $0.tid != server.pid
    }
    let recall =
      Double(requestThreadSamples.filter { $0.span != nil }.count)
      / Double(max(requestThreadSamples.count, 1))
    print(
      "L7 recall (\(hooks) hooks): \(requestThreadSamples.count) request-thread samples, \(String(format: "%.1f", 100 * recall))% in a span"
    )
    #expect(requestThreadSamples.count > 200)
    #expect(recall >= 0.95)
  }

  @Test(.requires(.bpf, .tool("curl")), arguments: bothHooks)
  func clientRequestsInsideAServerSpanAreItsChildren(hooks: L7Hooks) throws {
    let bin = try TestEnvironment.buildSamples(into: TestEnvironment.temporaryDirectory("l7client"))
    let server = try LoopbackServer.httpServer(in: bin)
    defer { server.stop() }
    let observation = try Self.observe(
      server: server, hooks: hooks, frequency: 99,
      clients: [
        [
          "curl", "-s", "-o", "/dev/null", "-H",
          "traceparent: 00-\(Self.traceID)-\(Self.parentID)-01",
          "http://127.0.0.1:\(server.port)/call?port=\(server.port)",
        ]
      ])
    let outer = observation.exchanges.first { $0.kind == .server && Self.path($0) == "/call" }
    let client = observation.exchanges.first { $0.kind == .client }
    let inner = observation.exchanges.first { $0.kind == .server && Self.path($0) == "/light" }
    #expect(outer != nil && client != nil && inner != nil, "\(observation.exchanges)")
    guard let outer, let client, let inner else { return }
    #expect(client.traceID == outer.traceID)
    #expect(client.parentSpanID == outer.spanID)
    #expect(client.status == 200)
    #expect(String(decoding: client.requestLine, as: UTF8.self) == "GET /light HTTP/1.1")
    #expect(client.peerPort == server.port)
    #expect(
      outer.startMonotonicNanos <= client.startMonotonicNanos
        && client.endMonotonicNanos <= outer.endMonotonicNanos)
    // The peer is the same traced server: it sees no traceparent (we never modify traffic).
    #expect(inner.parentSpanID == nil && inner.traceID != outer.traceID)
  }
}
