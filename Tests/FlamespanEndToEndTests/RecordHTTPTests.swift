import FlamespanExport
import FlamespanModel
import FlamespanTestSupport
import Foundation
import Testing

/// `flamespan record --spans-output` against real servers on loopback, driven by curl and wrk.
/// Serialized: they load BPF and measure CPU, so they must not compete for the two cores.
@Suite(.serialized) struct RecordHTTPTests {
  static func randomHex(bytes: Int) -> String {
    HexCoding.encode((0..<bytes).map { _ in UInt8.random(in: 1...255) })
  }

  @Test(.requires(.bpf, .tool("curl"), .tool("wrk")))
  func sampleServerSpansFollowCallersAndLabelTheirSamples() throws {
    let bin = try TestEnvironment.buildSamples(into: TestEnvironment.temporaryDirectory("l7e2e"))
    let port = Loopback.freePort()
    let server = try LoopbackServer(
      [bin.appendingPathComponent("http_server").path, String(port)], port: port)
    defer { server.stop() }
    let recording = try Recording(pid: server.pid, seconds: 10)
    let base = "http://127.0.0.1:\(port)"

    // Five requests on one keep-alive connection, each from a different caller context.
    let callers = (0..<5).map { _ in
      (trace: Self.randomHex(bytes: 16), parent: Self.randomHex(bytes: 8))
    }
    var curl = ["curl", "-s", "-o", "/dev/null"]
    for (index, caller) in callers.enumerated() {
      if index > 0 { curl += ["--next", "-s", "-o", "/dev/null"] }
      curl += [
        "-H", "traceparent: 00-\(caller.trace)-\(caller.parent)-01",
        "\(base)/burn?ms=40&user=\(index)",
      ]
    }
    #expect(try Run.command(curl).status == 0)
    #expect(
      try Run.command(["curl", "-s", "-o", "/dev/null", "\(base)/burn?ms=40", "\(base)/burn?ms=40"])
        .status == 0)
    // Short and small: other suites (whole-machine agents among them) run alongside and see this load.
    let wrk = try Run.command(["wrk", "-t1", "-c4", "-d2s", "\(base)/burn?ms=1"])
    let finished = recording.finish()
    #expect(finished.status == 0, "stderr: \(finished.stderr)")
    #expect(finished.stderr.contains("HTTP spans:"), "\(finished.stderr)")
    // What the tracer could not follow would be counted here; these requests leave nothing out.
    #expect(
      finished.stderr.contains(
        "heads past 8 KiB: 0; pipelined requests not followed: 0; request lines cut: 0"),
      "\(finished.stderr)")

    let spans = try ExportedSpan.read(recording.spansPath)
    for caller in callers {
      let matching = spans.filter { $0.traceID == caller.trace }
      #expect(matching.count == 1, "trace \(caller.trace): \(matching.count) spans")
      guard let span = matching.first else { continue }
      #expect(span.parentSpanID == caller.parent)
      #expect(span.name == "GET /burn" && span.kind == 2)
      #expect(span.attributes["http.response.status_code"] == "200")
      #expect(span.attributes["url.path"] == "/burn")
      #expect(span.attributes["server.port"] == String(port))
      #expect(span.attributes["network.peer.address"] == "127.0.0.1")
      #expect(span.attributes["process.pid"] == String(server.pid))
      #expect(span.end >= span.start + 40_000_000, "a 40 ms burn lasts at least 40 ms")
    }
    let fresh = spans.filter { $0.parentSpanID == nil && $0.name == "GET /burn" }
    #expect(Set(fresh.map(\.traceID)).count == fresh.count, "fresh trace ids are unique")
    #expect(
      !spans.contains { $0.traceID.allSatisfy { $0 == "0" } || $0.spanID.allSatisfy { $0 == "0" } })
    // Nothing beyond the fixed attributes leaves the tracer: no query strings, no headers.
    #expect(
      !spans.contains {
        $0.name.contains("?") || $0.attributes.values.contains { $0.contains("user=") }
      })

    // Capture rate under wrk: every request wrk completed is a span (the two curl ones aside).
    let requests =
      Int(
        wrk.stdout.split(separator: "\n").first { $0.contains("requests in") }?
          .split(separator: " ").first ?? "") ?? 0
    let captured = fresh.count - 2
    print("wrk: \(requests) requests, \(captured) spans")
    #expect(requests > 100, "wrk: \(wrk.stdout)")
    #expect(Double(captured) >= 0.999 * Double(requests))

    // Every labelled sample names a span of the file, with its trace; request threads are almost always in one.
    let profile = try ProfileExporter.readPprof(from: recording.pprofPath.path)
    let bySpanID = Dictionary(
      spans.map { ($0.spanID, $0) }, uniquingKeysWith: { first, _ in first })
    let ours = profile.samples.filter { $0.pid == server.pid && $0.tid != server.pid }
    for sample in ours {
      guard let context = sample.span else { continue }
      let span = bySpanID[context.spanIDHex]
      #expect(span != nil, "sample labelled with unknown span \(context.spanIDHex)")
      #expect(span?.traceID == context.traceIDHex)
      #expect(span?.name == context.name)
      #expect(span?.attributes["thread.id"] == String(sample.tid))
    }
    let total = ours.reduce(0) { $0 + $1.count }
    let inSpans = ours.filter { $0.span != nil }.reduce(0) { $0 + $1.count }
    print("request-thread samples: \(total), in a span: \(inSpans)")
    #expect(total > 300)
    #expect(Double(inSpans) >= 0.95 * Double(total))
    for caller in callers {
      #expect(
        ours.contains { $0.span?.traceIDHex == caller.trace }, "no samples for \(caller.trace)")
    }
  }

  @Test(.requires(.bpf, .tool("curl"), .tool("python3")))
  func pythonHTTPServerThroughRecvfromAndSendto() throws {
    let root = try TestEnvironment.temporaryDirectory("l7python")
    try Data("hello\n".utf8).write(to: root.appendingPathComponent("index.html"))
    let port = Loopback.freePort()
    let python = try #require(TestEnvironment.which("python3"))
    let server = try LoopbackServer(
      [python, "-m", "http.server", String(port), "--bind", "127.0.0.1"], port: port,
      directory: root)
    defer { server.stop() }
    let recording = try Recording(pid: server.pid, seconds: 5, frequency: 99)
    let trace = Self.randomHex(bytes: 16)
    let parent = Self.randomHex(bytes: 8)
    let base = "http://127.0.0.1:\(port)"
    _ = try Run.command([
      "curl", "-s", "-o", "/dev/null", "-H", "TRACEPARENT: 00-\(trace)-\(parent)-01",
      "\(base)/index.html?secret=1",
    ])
    _ = try Run.command(["curl", "-s", "-o", "/dev/null", "\(base)/missing"])
    // An invalid context (uppercase hex) must be ignored, not half-used.
    _ = try Run.command([
      "curl", "-s", "-o", "/dev/null", "-H", "traceparent: 00-\(trace.uppercased())-\(parent)-01",
      "\(base)/invalid",
    ])
    // Binary garbage, then half a request closed mid-header.
    Loopback.send((0..<3000).map { _ in UInt8.random(in: 0...255) }, port: port)
    Loopback.send(Array("GET /half HTTP/1.1\r\nHost: exa".utf8), port: port, readReply: false)
    let finished = recording.finish()
    #expect(finished.status == 0, "stderr: \(finished.stderr)")

    let spans = try ExportedSpan.read(recording.spansPath)
    let index = spans.first { $0.name == "GET /index.html" }
    #expect(index?.traceID == trace && index?.parentSpanID == parent, "\(spans.map(\.name))")
    #expect(index?.attributes["http.response.status_code"] == "200")
    let missing = spans.first { $0.name == "GET /missing" }
    #expect(missing?.attributes["http.response.status_code"] == "404")
    #expect(missing?.parentSpanID == nil && missing?.errorStatus == false)
    let invalid = spans.first { $0.name == "GET /invalid" }
    #expect(invalid != nil)
    #expect(invalid?.parentSpanID == nil && invalid?.traceID != trace)
    // Garbage never becomes a span; every span has a real method and valid ids.
    #expect(
      spans.allSatisfy {
        ["GET /index.html", "GET /missing", "GET /invalid", "GET /half"].contains($0.name)
      })
    #expect(spans.allSatisfy { $0.traceID.count == 32 && $0.spanID.count == 16 })
    // Half a request may still be answered (Python sends 400); it never borrows a caller's context.
    if let half = spans.first(where: { $0.name == "GET /half" }) {
      #expect(half.parentSpanID == nil && half.traceID != trace)
    }
  }

  @Test(.requires(.bpf, .tool("curl"), .tool("nginx")))
  func nginxThroughWritevAndSendfile() throws {
    let root = try TestEnvironment.temporaryDirectory("l7nginx")
    let html = root.appendingPathComponent("html")
    try FileManager.default.createDirectory(at: html, withIntermediateDirectories: true)
    try Data("hello nginx\n".utf8).write(to: html.appendingPathComponent("index.html"))
    try Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0) }).write(
      to: html.appendingPathComponent("big.bin"))
    let port = Loopback.freePort()
    let temp = root.appendingPathComponent("tmp").path
    let configuration = """
      worker_processes 1;
      daemon off;
      pid \(root.path)/nginx.pid;
      error_log \(root.path)/error.log;
      events { worker_connections 256; }
      http {
        access_log off;
        sendfile on;
        client_body_temp_path \(temp); proxy_temp_path \(temp); fastcgi_temp_path \(temp);
        uwsgi_temp_path \(temp); scgi_temp_path \(temp);
        server {
          listen 127.0.0.1:\(port);
          root \(html.path);
          location /fail { return 503; }
        }
      }
      """
    let configurationPath = root.appendingPathComponent("nginx.conf")
    try Data(configuration.utf8).write(to: configurationPath)
    let nginx = try #require(TestEnvironment.which("nginx"))
    let server = try LoopbackServer(
      [nginx, "-c", configurationPath.path, "-p", root.path], port: port)
    defer { server.stop() }
    // --pid covers the processes a target forks from now on; the worker exists already, so name it too.
    let workers = try String(
      contentsOfFile: "/proc/\(server.pid)/task/\(server.pid)/children", encoding: .utf8
    ).split(separator: " ").map(String.init)
    #expect(workers.count == 1)
    let recording = try Recording(
      pid: server.pid, seconds: 5, frequency: 99, extra: workers.flatMap { ["--pid", $0] })
    let base = "http://127.0.0.1:\(port)"
    let trace = Self.randomHex(bytes: 16)
    let parent = Self.randomHex(bytes: 8)
    let header = "traceparent: 00-\(trace)-\(parent)-01"
    _ = try Run.command([
      "curl", "-s", "-o", "/dev/null", "-H", header, "\(base)/", "--next", "-s", "-o", "/dev/null",
      "-H", header,
      "\(base)/big.bin", "--next", "-s", "-o", "/dev/null", "\(base)/fail",
    ])
    let finished = recording.finish()
    #expect(finished.status == 0, "stderr: \(finished.stderr)")
    let spans = try ExportedSpan.read(recording.spansPath)
    // nginx serves in its worker, never in the master.
    #expect(spans.allSatisfy { workers.contains($0.attributes["process.pid"] ?? "") })
    let index = spans.first { $0.name == "GET /" }
    #expect(index?.traceID == trace && index?.parentSpanID == parent, "\(spans.map(\.name))")
    let big = spans.first { $0.name == "GET /big.bin" }
    #expect(big?.traceID == trace && big?.attributes["http.response.status_code"] == "200")
    let failure = spans.first { $0.name == "GET /fail" }
    #expect(
      failure?.attributes["http.response.status_code"] == "503" && failure?.errorStatus == true)
    #expect(failure?.parentSpanID == nil && failure?.traceID != trace)
  }
}
