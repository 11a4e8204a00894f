import FlamespanBPF
import FlamespanModel
import FlamespanTestSupport
import Foundation
import Testing

/// A server span ends when the last byte of its response is written, found from the response's framing,
/// not when the client's next request arrives: a keep-alive client that pauses between requests must not
/// stretch the spans, and a chunked body written slowly must not end them early.
@Suite(.serialized) struct L7ResponseEndTests {
  /// Python's http.client on one keep-alive connection, pausing `pause` seconds after each response.
  static func pausingClient(port: Int, pause: Double, paths: [String]) -> [String] {
    let script = """
      import http.client, sys, time
      connection = http.client.HTTPConnection("127.0.0.1", \(port))
      for path in sys.argv[1:]:
          connection.request("GET", path)
          response = connection.getresponse()
          response.read()
          time.sleep(\(pause))
      connection.close()
      """
    return ["python3", "-c", script] + paths
  }

  /// The client's pause after each response: a span that ended at the next request would last this long.
  static let pause = 0.4

  /// The client sleeps `pause` after reading each whole response, so a span that ends with its last byte
  /// ends at least that long before the next request starts; one that waited for the next request would
  /// leave no gap. Comparing the gap rather than the span's length keeps the check true on a loaded
  /// machine, where writing a 256 KiB response can itself take longer than the pause.
  static func expectTheClientsPauseBetween(_ servers: [HTTPExchange]) {
    let ordered = servers.sorted { $0.startMonotonicNanos < $1.startMonotonicNanos }
    for (span, next) in zip(ordered, ordered.dropFirst()) {
      let gap = (Double(next.startMonotonicNanos) - Double(span.endMonotonicNanos)) / 1e9
      #expect(
        gap >= pause * 0.9,
        "\(L7TracerTests.path(span)) ended \(gap) s before the next request, not after the client's \(pause) s pause"
      )
    }
  }

  /// The sample server traced with `hooks` while a pausing client fetches `paths`.
  static func observePausingClient(hooks: L7Hooks, paths: [String]) throws
    -> L7TracerTests.Observation
  {
    let bin = try TestEnvironment.buildSamples(into: TestEnvironment.temporaryDirectory("l7end"))
    let server = try LoopbackServer.httpServer(in: bin)
    defer { server.stop() }
    return try L7TracerTests.observe(
      server: server, hooks: hooks, frequency: 99,
      clients: [Self.pausingClient(port: server.port, pause: pause, paths: paths)])
  }

  @Test(.requires(.bpf), arguments: L7TracerTests.bothHooks)
  func serverSpansEndWithTheirLastResponseByte(hooks: L7Hooks) throws {
    let observation = try Self.observePausingClient(
      hooks: hooks, paths: ["/light", "/chunked?n=40", "/big?kb=256", "/burn?ms=30", "/light"])
    let servers = observation.exchanges.filter { $0.kind == .server }
    #expect(servers.count == 5, "\(servers.map { L7TracerTests.path($0) })")
    for exchange in servers {
      let path = L7TracerTests.path(exchange)
      #expect(exchange.endReason == .complete, "\(path) ended by \(exchange.endReason)")
      #expect(exchange.status == 200)
    }
    Self.expectTheClientsPauseBetween(servers)
    let chunked = servers.first { L7TracerTests.path($0) == "/chunked" }
    let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
    // The span did not end before the zero-length chunk: every byte up to it is counted.
    #expect(chunked?.bytesOut == UInt64(head.utf8.count + 40 * 11 + 5))
    let big = servers.first { L7TracerTests.path($0) == "/big" }
    #expect((big?.bytesOut ?? 0) > 256 * 1024)
    let burn = servers.first { L7TracerTests.path($0) == "/burn" }
    // 30 ms of CPU happened inside the span: it started before the work and ended after it.
    #expect(burn.map { $0.endMonotonicNanos - $0.startMonotonicNanos >= 30_000_000 } == true)
    #expect(observation.counters.eventsLost == 0)
  }

  /// Framing headers in any case, each after a name that the header scan's first pass cannot tell from
  /// it (same first and eighth letters): the spans still end at their last byte.
  @Test(.requires(.bpf), arguments: L7TracerTests.bothHooks)
  func framingHeadersAreFoundInAnyCase(hooks: L7Hooks) throws {
    let observation = try Self.observePausingClient(
      hooks: hooks, paths: ["/cased", "/cased?chunked=1", "/light"])
    let servers = observation.exchanges.filter { $0.kind == .server }
    #expect(servers.map { L7TracerTests.path($0) } == ["/cased", "/cased", "/light"])
    for exchange in servers {
      #expect(
        exchange.endReason == .complete,
        "\(L7TracerTests.path(exchange)) ended by \(exchange.endReason)")
    }
    Self.expectTheClientsPauseBetween(servers)
    let lengthHead = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nCONTENT-LENGTH: 6\r\n\r\n"
    let chunkedHead =
      "HTTP/1.1 200 OK\r\ntransport-note: not framing\r\ntRANSFER-eNCODING: chunked\r\n\r\n"
    #expect(servers.first?.bytesOut == UInt64(lengthHead.utf8.count + 6))
    #expect(servers.dropFirst().first?.bytesOut == UInt64(chunkedHead.utf8.count + 16))
  }
}

/// `--pid` covers what a traced process forks later: a server started by a traced shell is traced.
@Suite(.serialized) struct L7ForkTests {
  @Test(.requires(.bpf, .tool("curl")), arguments: L7TracerTests.bothHooks)
  func aServerForkedByATracedProcessIsTraced(hooks: L7Hooks) throws {
    let bin = try TestEnvironment.buildSamples(into: TestEnvironment.temporaryDirectory("l7fork"))
    let goFile = bin.appendingPathComponent("fork-go")
    // "; true" keeps the shell alive, so the server is its forked child rather than an exec of itself. The
    // shell forks only once the tracer is attached and says so: verification alone takes seconds on a
    // machine busy with the rest of the suite, which a fixed sleep did not always cover.
    let shell = try BackgroundProcess([
      "/bin/sh", "-c",
      "while [ ! -e '\(goFile.path)' ]; do sleep 0.05; done; '\(bin.path)/http_server' 0; true",
    ])
    defer { shell.stop() }
    let tracer = try L7Tracer(configuration: L7TracerConfiguration(pids: [shell.pid], hooks: hooks))
    defer { tracer.close() }
    #expect(FileManager.default.createFile(atPath: goFile.path, contents: Data()))
    let listening = try #require(
      shell.waitForLine(startingWith: "listening ", seconds: 15),
      "the forked http_server never reported its port")
    let serverPort = try #require(Int(listening.dropFirst("listening ".count)))
    let client = try BackgroundProcess([
      "curl", "-s", "-o", "/dev/null", "http://127.0.0.1:\(serverPort)/light",
    ])
    var exchanges: [HTTPExchange] = []
    let until = Date().addingTimeInterval(10)
    while Date() < until && !exchanges.contains(where: { $0.kind == .server }) {
      try tracer.poll(timeoutMilliseconds: 50) { event in
        if case .exchange(let exchange) = event { exchanges.append(exchange) }
      }
    }
    _ = client.finish()
    let server = exchanges.first { $0.kind == .server }
    #expect(server != nil, "no span from the forked server")
    #expect(server.map { $0.pid != shell.pid } == true)
    #expect(server.map { L7TracerTests.path($0) } == "/light")
  }
}

/// A ring buffer too small for a burst loses exchange records, and every lost one is counted.
@Suite(.serialized) struct L7LostEventTests {
  @Test(.requires(.bpf, .tool("curl"))) func aFullRingBufferIsCountedRecordByRecord() throws {
    let bin = try TestEnvironment.buildSamples(into: TestEnvironment.temporaryDirectory("l7lost"))
    let server = try LoopbackServer.httpServer(in: bin)
    defer { server.stop() }
    let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
    let tracer = try L7Tracer(
      configuration: L7TracerConfiguration(pids: [server.pid], ringBufferBytes: pageSize))
    defer { tracer.close() }
    let requests = 200
    // One keep-alive connection, and nobody reads the ring until the client is done.
    let client = try BackgroundProcess(
      ["curl", "-s", "-o", "/dev/null"]
        + Array(repeating: "http://127.0.0.1:\(server.port)/light", count: requests))
    _ = client.finish()
    var received = 0
    while try tracer.poll(timeoutMilliseconds: 100, handler: { _ in received += 1 }) > 0 {}
    let counters = tracer.counters()
    #expect(counters.eventsLost > 0, "a one-page ring cannot hold \(requests) records")
    #expect(received < requests)
    #expect(Int(counters.exchanges) == received, "records written are the records read")
    #expect(Int(counters.exchanges + counters.eventsLost) == requests, "\(counters)")
  }
}
