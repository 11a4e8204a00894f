import FlamespanExport
import FlamespanModel
import FlamespanTestSupport
import Foundation
import Testing

/// The agent's UI server under hostile clients (issue 25, item 2): sockets that trickle their heads, a
/// query over a day of windows, foreign Host headers, a required token. Against the real agent binary on
/// loopback; serialized, since each test runs a whole-machine agent.
@Suite(.serialized) struct AgentUIServerTests {
  /// An agent with its UI on an ephemeral loopback port, once it logs the address it serves.
  static func startAgent(_ extra: [String], directory: URL, label: String = "agent") throws -> (
    agent: BackgroundProcess, port: Int
  ) {
    let agent = try BackgroundProcess(
      [
        TestEnvironment.flamespanBinary, "agent", "--export-interval", "2s", "--trace-http",
        "false",
        "--status-lines", "false", "--listen", "127.0.0.1:0",
      ] + extra, logs: directory, label: label)
    var port: Int?
    _ = waitUntil(seconds: 30, every: 0.2) {
      if let line = agent.stderr.split(separator: "\n").first(where: {
        $0.contains("UI on http://")
      }),
        let text = line.components(separatedBy: "UI on http://127.0.0.1:").last
      {
        port = Int(text.prefix { $0.isNumber })
      }
      return port != nil || !agent.process.isRunning
    }
    guard let port else {
      _ = agent.stop(signal: SIGKILL)
      throw TestFailure("the agent did not serve its UI: \(agent.stderr.suffix(2000))")
    }
    return (agent, port)
  }

  struct Reply {
    var status: Int
    var head: String
    var body: String
    var seconds: Double
  }

  /// One request written whole on a fresh loopback connection; the reply read to its end. Status 0 when
  /// no reply came within `timeout` seconds.
  static func request(
    port: Int, _ target: String, host: String? = nil, headers: [String] = [], timeout: Double = 1
  ) -> Reply {
    let began = Date()
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var limit = timeval(
      tv_sec: Int(timeout), tv_usec: Int(timeout.truncatingRemainder(dividingBy: 1) * 1e6))
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    guard connectLoopback(fd, port: port) else {
      return Reply(status: 0, head: "connect failed", body: "", seconds: 0)
    }
    let text =
      "GET \(target) HTTP/1.1\r\nHost: \(host ?? "127.0.0.1:\(port)")\r\n"
      + headers.map { "\($0)\r\n" }.joined() + "\r\n"
    _ = text.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
    var data: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while Date().timeIntervalSince(began) < timeout {
      let count = recv(fd, &buffer, buffer.count, 0)
      if count <= 0 { break }
      data.append(contentsOf: buffer[0..<count])
    }
    let seconds = Date().timeIntervalSince(began)
    let reply = String(decoding: data, as: UTF8.self)
    let parts = reply.components(separatedBy: "\r\n\r\n")
    let status = parts[0].split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
    return Reply(
      status: seconds <= timeout ? status : 0, head: parts[0],
      body: parts.dropFirst().joined(separator: "\r\n\r\n"), seconds: seconds)
  }

  static func connectLoopback(_ fd: Int32, port: Int) -> Bool {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    return withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
      }
    }
  }

  static func refusedCount(_ reason: String, port: Int, headers: [String] = []) -> Double? {
    let reply = request(port: port, "/metrics", headers: headers, timeout: 5)
    let name = "flamespan_ui_requests_refused_total{reason=\"\(reason)\"} "
    return reply.body.split(separator: "\n").first { $0.hasPrefix(name) }.flatMap {
      Double($0.dropFirst(name.count))
    }
  }

  /// Loopback sockets that each send a request line, then one header line every `interval`, never the
  /// blank line that ends the head; one the server closes is opened again, so `count` stay open.
  final class Trickler: @unchecked Sendable {
    private let wake = NSCondition()
    private var running = true
    private var reopened = 0
    private let exited = DispatchSemaphore(value: 0)

    init(port: Int, count: Int, interval: Double) {
      let initial = (0..<count).map { _ in Self.open(port: port) }
      let worker = Thread { [self] in
        var sockets = initial
        var line = 0
        wake.lock()
        while running {
          wake.unlock()
          for index in sockets.indices {
            var probe: UInt8 = 0
            // A reply (the 408) or the end of the stream: the server gave up on this one.
            let peek = recv(sockets[index], &probe, 1, Int32(MSG_DONTWAIT) | Int32(MSG_PEEK))
            let gone = peek >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)
            let sent =
              gone
              ? -1
              : "X-Trickle-\(line): a\r\n".withCString {
                send(sockets[index], $0, strlen($0), Int32(MSG_NOSIGNAL))
              }
            if sent < 0 {
              close(sockets[index])
              sockets[index] = Self.open(port: port)
              wake.withLock { reopened += 1 }
            }
          }
          line += 1
          wake.lock()
          // The trickle's pace: one header line per socket every `interval`.
          _ = wake.wait(until: Date().addingTimeInterval(interval))
        }
        wake.unlock()
        for fd in sockets { close(fd) }
        exited.signal()
      }
      worker.start()
    }

    private static func open(port: Int) -> Int32 {
      let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
      if connectLoopback(fd, port: port) {
        let line = "GET / HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
        _ = line.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
      }
      return fd
    }

    var reopenedCount: Int { wake.withLock { reopened } }

    /// Stops trickling and closes every socket.
    func stop() {
      wake.withLock {
        running = false
        wake.signal()
      }
      exited.wait()
    }
  }

  /// Issue 25: eight sockets trickling a header line every 3 s kept every other request at 503. With 50
  /// held open (re-opened whenever the server closes one), /metrics, / and /healthz must answer within 1 s,
  /// every time, for FLAMESPAN_TRICKLE_SECONDS (default 15; the issue's figure is 60).
  @Test(.requires(.bpf)) func trickledHeadsDoNotTakeTheUIDown() throws {
    let seconds =
      Double(ProcessInfo.processInfo.environment["FLAMESPAN_TRICKLE_SECONDS"] ?? "") ?? 15
    let directory = try TestEnvironment.temporaryDirectory("agent-trickle")
    let (agent, port) = try Self.startAgent(
      ["--store", directory.appendingPathComponent("store").path], directory: directory)
    defer { _ = agent.stop(signal: SIGKILL) }

    let trickler = Trickler(port: port, count: 50, interval: 3)
    defer { trickler.stop() }
    var worst: [String: Double] = [:]
    var probes = 0
    var failures: [String] = []
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
      for path in ["/metrics", "/", "/healthz"] {
        let reply = Self.request(port: port, path, timeout: 1)
        probes += 1
        worst[path] = max(worst[path] ?? 0, reply.seconds)
        if reply.status != 200 || reply.seconds >= 1 {
          failures.append("\(path): \(reply.status) after \(reply.seconds) s")
        }
      }
      // Pacing, so the probes sample the whole period rather than hammer it.
      usleep(100_000)
    }
    print(
      "trickle \(seconds) s, 50 sockets: \(probes) probes, worst \(worst), \(trickler.reopenedCount) sockets re-opened after the server closed them"
    )
    #expect(
      failures.isEmpty, "\(failures.count) of \(probes) probes failed: \(failures.prefix(10))")
    #expect(agent.process.isRunning, "\(agent.stderr.suffix(2000))")
    if seconds > 11 {
      // Every trickled head ran into the 10 s deadline, so the first 50 were closed and counted.
      #expect((Self.refusedCount("head_timeout", port: port) ?? 0) >= 50)
      #expect(trickler.reopenedCount >= 50)
    }
    // And a foreign Host gets 403, a known one 200, so a page cannot read the API by DNS rebinding.
    let foreign = Self.request(port: port, "/api/spans", host: "rebind.example:\(port)")
    #expect(foreign.status == 403, "\(foreign.head)")
    #expect(foreign.body.contains("--allowed-hosts"))
    #expect(Self.request(port: port, "/api/spans", host: "localhost:\(port)").status == 200)
    #expect(Self.request(port: port, "/metrics", host: "rebind.example").status == 403)
    #expect(Self.request(port: port, "/healthz", host: "rebind.example").status == 200)
  }

  /// A store with 24 h of 10 s windows (8,640): the issue's 24 h query took 13 s at 195% CPU. Past
  /// --max-query-range it is refused at once; a 6 h query is answered or stopped within --query-budget;
  /// /metrics answers meanwhile.
  @Test(.requires(.bpf)) func queriesAreBoundedInRangeAndTime() throws {
    let directory = try TestEnvironment.temporaryDirectory("agent-query-bound")
    let store = directory.appendingPathComponent("store")
    let nowMillis = Int64(Date().timeIntervalSince1970 * 1000)
    try Self.fillStore(store, windows: 8640, windowMillis: 10_000, endingAt: nowMillis)
    let budget = 1.0
    let (agent, port) = try Self.startAgent(
      ["--store", store.path, "--retention", "48h", "--query-budget", "1s"], directory: directory)
    defer { _ = agent.stop(signal: SIGKILL) }

    let day = Self.request(
      port: port, "/api/profile?from=\(nowMillis - 86_400_000)&to=\(nowMillis)", timeout: 5)
    #expect(day.status == 413, "\(day.head)\n\(day.body.prefix(300))")
    #expect(day.head.contains("application/json"))
    let message =
      (try? JSONSerialization.jsonObject(with: Data(day.body.utf8)) as? [String: Any])?["message"]
      as? String ?? ""
    #expect(message.contains("--max-query-range") && message.contains("narrow"), "\(message)")
    #expect(day.seconds < 1, "refused in \(day.seconds) s")

    // Four 6 h queries at once: each ends within its budget (answered, or stopped with a 503 that says
    // what to narrow), and /metrics is answered all along.
    let from = nowMillis - 6 * 3_600_000
    final class Replies: @unchecked Sendable {
      let lock = NSLock()
      var all: [Reply] = []
    }
    let results = Replies()
    let group = DispatchGroup()
    // Threads of their own, so all four are in flight at once whatever the machine's core count.
    for _ in 0..<4 {
      group.enter()
      Thread {
        let reply = Self.request(
          port: port, "/api/profile?format=folded&from=\(from)&to=\(nowMillis)", timeout: 20)
        results.lock.withLock { results.all.append(reply) }
        group.leave()
      }.start()
    }
    var metricsWorst = 0.0
    var metricsFailures = 0
    while group.wait(timeout: .now() + .milliseconds(100)) == .timedOut {
      let reply = Self.request(port: port, "/metrics", timeout: 1)
      metricsWorst = max(metricsWorst, reply.seconds)
      if reply.status != 200 { metricsFailures += 1 }
    }
    let replies = results.lock.withLock { results.all }
    print(
      "6 h queries (2,160 windows), budget \(budget) s: "
        + replies.map { "\($0.status) in \(String(format: "%.2f", $0.seconds)) s" }.joined(
          separator: ", ") + "; /metrics worst \(String(format: "%.3f", metricsWorst)) s")
    #expect(replies.count == 4)
    for reply in replies {
      #expect([200, 503].contains(reply.status), "\(reply.head)")
      if reply.status == 503 {
        #expect(
          reply.body.contains("--query-budget") && reply.body.contains("narrow"), "\(reply.body)")
      }
    }
    // Two run at once, the others wait for a worker: the last starts after two budgets at most.
    #expect(replies.allSatisfy { $0.seconds < 3 * budget + 1 }, "\(replies.map(\.seconds))")
    #expect(metricsFailures == 0 && metricsWorst < 1, "/metrics worst \(metricsWorst) s")
    #expect(agent.process.isRunning)
  }

  /// `count` copies of one window's pprof, named as the store names them, back to back up to `endingAt`.
  static func fillStore(_ store: URL, windows count: Int, windowMillis: Int64, endingAt end: Int64)
    throws
  {
    let profiles = store.appendingPathComponent("profiles")
    try FileManager.default.createDirectory(at: profiles, withIntermediateDirectories: true)
    var random = SplitMix(seed: 25)
    let functions = (0..<400).map { "function_\($0)" }
    var samples: [ProfileSample] = []
    for index in 0..<300 {
      var stack: [ResolvedLocation] = []
      for _ in 0..<16 {
        let function = functions[Int(random.next() % 400)]
        stack.append(
          ResolvedLocation(
            address: random.next() & 0xFFFF_FFFF, mapping: nil,
            frames: [SourceFrame(function: function)]))
      }
      let pid = Int32(100 + index % 20)
      samples.append(
        ProfileSample(
          stack: stack, pid: pid, tid: pid, threadName: "worker",
          count: Int64(1 + random.next() % 5)))
    }
    let start = end - Int64(count) * windowMillis
    let bytes = try Gzip.compress(
      PprofEncoder.encode(
        Profile(
          samples: samples, periodNanos: 1_000_000_000 / 19, startTimeNanos: start * 1_000_000,
          durationNanos: windowMillis * 1_000_000)))
    for index in 0..<count {
      let from = start + Int64(index) * windowMillis
      let name = "\(from)-\(from + windowMillis)-fixture\(index).pb.gz"
      try Data(bytes).write(to: profiles.appendingPathComponent(name))
    }
  }

  /// --api-token-file: 401 without the token or with a wrong one, 200 with it; /healthz and the page stay
  /// open; --allowed-hosts adds a name, and other Hosts get 403 even with the token.
  @Test(.requires(.bpf)) func tokenIsRequiredAndHostsAreChecked() throws {
    let directory = try TestEnvironment.temporaryDirectory("agent-token")
    let tokenFile = directory.appendingPathComponent("token")
    let token = "s3cret-\(UInt64.random(in: 1...UInt64.max))"
    try (token + "\n").write(to: tokenFile, atomically: true, encoding: .utf8)
    chmod(tokenFile.path, 0o600)
    let (agent, port) = try Self.startAgent(
      [
        "--store", directory.appendingPathComponent("store").path, "--api-token-file",
        tokenFile.path, "--allowed-hosts", "flamespan.internal",
      ], directory: directory)
    defer { _ = agent.stop(signal: SIGKILL) }
    let bearer = "Authorization: Bearer \(token)"

    let none = Self.request(port: port, "/api/spans")
    #expect(none.status == 401, "\(none.head)")
    #expect(none.head.contains("WWW-Authenticate: Bearer"))
    #expect(none.body.contains("Authorization: Bearer"))
    #expect(Self.request(port: port, "/metrics").status == 401)
    #expect(
      Self.request(port: port, "/api/spans", headers: ["Authorization: Bearer wrong"]).status == 401
    )
    #expect(
      Self.request(port: port, "/api/spans", headers: ["Authorization: Basic \(token)"]).status
        == 401)
    #expect(Self.request(port: port, "/api/spans", headers: [bearer]).status == 200)
    let metrics = Self.request(port: port, "/metrics", headers: [bearer])
    #expect(metrics.status == 200 && metrics.body.contains("flamespan_samples_total"))
    #expect(Self.request(port: port, "/healthz").status == 200)
    #expect(
      Self.request(port: port, "/").status == 200, "the page holds no data and asks for the token")

    #expect(
      Self.request(port: port, "/api/spans", host: "flamespan.internal:\(port)", headers: [bearer])
        .status == 200)
    #expect(
      Self.request(port: port, "/api/spans", host: "evil.example:\(port)", headers: [bearer]).status
        == 403)
    #expect((Self.refusedCount("unauthorized", port: port, headers: [bearer]) ?? 0) >= 4)
  }
}
