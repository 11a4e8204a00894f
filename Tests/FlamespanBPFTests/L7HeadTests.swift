import FlamespanBPF
import FlamespanModel
import FlamespanTestSupport
import Foundation
import Testing

/// Python's ThreadingHTTPServer (HTTP/1.1, keep-alive, Content-Length) on loopback, printing its port.
enum PythonHTTPServer {
  static let script = """
    import http.server, sys
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def do_GET(self):
            body = b"ok\\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *arguments):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
    """

  static func start() throws -> LoopbackServer {
    try LoopbackServer(["python3", "-c", script], printingPortAfter: "")
  }
}

/// The request head, whole or counted (issue 25, item 1): against Python's ThreadingHTTPServer, with raw
/// socket clients, a `traceparent` deep in a head, 100 pipelined requests, and requests written a byte
/// at a time give a span each with the caller's trace, up to the documented bound (8 KiB of head), and
/// what is past the bound is counted.
@Suite(.serialized) struct L7HeadTests {
  static let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"

  /// A raw-socket client (Python's socket module): `body` is Python that uses `s` (connected, TCP_NODELAY)
  /// and `port`, with `traceparent(i)` giving a context whose parent span id is i + 1.
  static func client(port: Int, _ body: String) -> [String] {
    let script = """
      import socket, sys, time
      port = int(sys.argv[1])
      def traceparent(i):
          return "00-\(traceID)-%016x-01" % (i + 1)
      def connect():
          s = socket.create_connection(("127.0.0.1", port))
          s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
          return s
      def read_to_end(s):
          data = b""
          while True:
              chunk = s.recv(65536)
              if not chunk:
                  return data
              data += chunk
      def read_response(s):
          data = b""
          while not data.endswith(b"ok\\n"):
              chunk = s.recv(65536)
              if not chunk:
                  break
              data += chunk
          return data
      s = connect()

      """
    return ["python3", "-c", script + body, "\(port)"]
  }

  struct Observation {
    var servers: [HTTPExchange] = []
    var counters = L7Counters()
    var clientOutput: [String] = []
  }

  static func observe(hooks: L7Hooks, clients: (Int) -> [[String]]) throws -> Observation {
    let server = try PythonHTTPServer.start()
    defer { server.stop() }
    let tracer = try L7Tracer(
      configuration: L7TracerConfiguration(pids: [server.pid], hooks: hooks))
    defer { tracer.close() }
    var observation = Observation()
    func drain(_ timeout: Int32) throws {
      try tracer.poll(timeoutMilliseconds: timeout) { event in
        if case .exchange(let exchange) = event, exchange.kind == .server {
          observation.servers.append(exchange)
        }
      }
    }
    for arguments in clients(server.port) {
      let client = try BackgroundProcess(arguments)
      let deadline = Date().addingTimeInterval(60)
      while client.isRunning && Date() < deadline { try drain(20) }
      let finished = client.finish()
      #expect(finished.status == 0, "client failed: \(arguments.last ?? "")")
      observation.clientOutput.append(finished.output)
    }
    let settle = Date().addingTimeInterval(0.3)
    while Date() < settle { try drain(20) }
    observation.counters = tracer.counters()
    return observation
  }

  static func parentIndex(_ exchange: HTTPExchange) -> Int? {
    guard exchange.contextFromHeader, HexCoding.encode(exchange.traceID) == traceID,
      let parent = exchange.parentSpanID
    else { return nil }
    return Int(HexCoding.encode(parent), radix: 16).map { $0 - 1 }
  }

  static func expectNothingLost(
    _ counters: L7Counters, sourceLocation: SourceLocation = #_sourceLocation
  ) {
    #expect(counters.eventsLost == 0, sourceLocation: sourceLocation)
    #expect(counters.pipelinedNotFollowed == 0, sourceLocation: sourceLocation)
    #expect(counters.rejectedTraceparents == 0, sourceLocation: sourceLocation)
  }

  @Test(.requires(.bpf, .tool("python3")), arguments: L7TracerTests.bothHooks)
  func pipelinedRequestsGetASpanEachInOrder(hooks: L7Hooks) throws {
    let count = 100
    let observation = try Self.observe(hooks: hooks) { port in
      [
        Self.client(
          port: port,
          """
          requests = b"".join(("GET /p%d HTTP/1.1\\r\\nHost: x\\r\\ntraceparent: %s\\r\\n%s\\r\\n" % (i, traceparent(i),
              "Connection: close\\r\\n" if i == \(count) - 1 else "")).encode() for i in range(\(count)))
          s.sendall(requests)
          print(read_to_end(s).count(b"HTTP/1.1 200 "))
          """)
      ]
    }
    #expect(
      observation.clientOutput.first?.trimmingCharacters(in: .whitespacesAndNewlines) == "\(count)")
    let servers = observation.servers
    #expect(servers.count == count, "\(servers.count) spans for \(count) pipelined requests")
    #expect(servers.map { L7TracerTests.path($0) } == (0..<count).map { "/p\($0)" })
    #expect(servers.map { Self.parentIndex($0) } == (0..<count).map { $0 })
    #expect(servers.allSatisfy { $0.status == 200 && $0.endReason == .complete })
    #expect(Set(servers.map { $0.spanID }).count == count)
    // Served one after another: each span starts when the last one ended.
    for (earlier, later) in zip(servers, servers.dropFirst()) {
      #expect(earlier.endMonotonicNanos <= later.startMonotonicNanos)
    }
    Self.expectNothingLost(observation.counters)
  }

  @Test(.requires(.bpf, .tool("python3")), arguments: L7TracerTests.bothHooks)
  func requestsWrittenAByteAtATimeGetEverySpan(hooks: L7Hooks) throws {
    let observation = try Self.observe(hooks: hooks) { port in
      [
        Self.client(
          port: port,
          """
          for i in range(3):
              request = ("GET /byte%d?q=%d HTTP/1.1\\r\\nHost: x\\r\\ntraceparent: %s\\r\\n\\r\\n" % (i, i, traceparent(i))).encode()
              for b in request:
                  s.send(bytes([b]))
                  time.sleep(0.001)
              read_response(s)
          # A request line split across two reads.
          s.send(b"GET /spl")
          time.sleep(0.05)
          s.send(("it12 HTTP/1.1\\r\\nHost: x\\r\\ntraceparent: %s\\r\\nConnection: close\\r\\n\\r\\n" % traceparent(3)).encode())
          read_to_end(s)
          """)
      ]
    }
    let servers = observation.servers
    #expect(
      servers.map { String(decoding: $0.requestLine, as: UTF8.self) } == [
        "GET /byte0", "GET /byte1", "GET /byte2", "GET /split12 HTTP/1.1",
      ])
    #expect(servers.map { Self.parentIndex($0) } == [0, 1, 2, 3])
    #expect(servers.allSatisfy { $0.status == 200 })
    Self.expectNothingLost(observation.counters)
    #expect(observation.counters.headsTooLong == 0)
  }

  @Test(.requires(.bpf, .tool("python3")), arguments: L7TracerTests.bothHooks)
  func aTraceparentDeepInTheHeadIsFoundUpToTheBoundAndCountedPastIt(hooks: L7Hooks) throws {
    // Cookies push the traceparent to about 1.5, 6 and 9 KB into the head; one connection each.
    let offsets = [1_500, 6_000, 9_000]
    let observation = try Self.observe(hooks: hooks) { port in
      offsets.enumerated().map { index, offset in
        Self.client(
          port: port,
          """
          head = "GET /deep%d HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n" % \(offset)
          cookie = "Cookie: " + "c" * (\(offset) - len(head) - 10) + "\\r\\n"
          head += cookie + "traceparent: %s\\r\\n\\r\\n" % traceparent(\(index))
          s.sendall(head.encode())
          read_to_end(s)
          """)
      }
    }
    let servers = observation.servers
    #expect(servers.map { L7TracerTests.path($0) } == offsets.map { "/deep\($0)" })
    #expect(servers.map { Self.parentIndex($0) } == [0, 1, nil])
    #expect(servers.allSatisfy { $0.status == 200 })
    // Past the bound: a fresh trace, and the head counted.
    #expect(
      servers.last.map { !$0.contextFromHeader && HexCoding.encode($0.traceID) != Self.traceID }
        == true)
    #expect(observation.counters.headsTooLong == 1)
    Self.expectNothingLost(observation.counters)
  }
}
