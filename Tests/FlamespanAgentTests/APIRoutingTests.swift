import FlamespanModel
import FlamespanTestSupport
import Foundation
import Testing

@testable import FlamespanAgent

/// The UI/API server and its routes on a real loopback socket, fed malformed and hostile requests: each
/// gets its own status and a message, and the server keeps answering afterwards.
@Suite struct APIRoutingTests {
  /// An agent with an empty store behind the hand-written server on an ephemeral port. The recorder is
  /// never run, so no privileges are needed.
  final class Fixture {
    let agent: Agent
    let server: HTTPServer
    var port: UInt16 { server.boundPort }

    init() throws {
      let directory = try TestEnvironment.temporaryDirectory("api-routing")
      var configuration = AgentConfiguration()
      configuration.storeDirectory = directory.path
      configuration.queryMaximumRangeNanos = 3600 * 1_000_000_000
      let store = try SQLiteStore(
        directory: directory.path, maximumAgeNanos: configuration.retentionNanos,
        maximumBytes: configuration.storeMaximumBytes)
      agent = Agent(configuration: configuration, store: store)
      let counters = HTTPServerCounters()
      let api = AgentAPI(agent: agent, counters: counters)
      server = try HTTPServer(address: "127.0.0.1:0", counters: counters) { [api] in api.handle($0)
      }
      server.start()
    }

    deinit {
      server.stop()
      _ = agent.queue.drain(until: KernelClock.monotonicNanos())
    }

    /// Sends `raw` as is and returns the status code and body of the answer (the server closes after it).
    func exchange(_ raw: String) throws -> (status: Int, body: String) {
      let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
      defer { close(fd) }
      var address = sockaddr_in()
      address.sin_family = sa_family_t(AF_INET)
      address.sin_port = port.bigEndian
      address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
      var timeout = timeval(tv_sec: 10, tv_usec: 0)
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
      let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
          connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
      }
      guard connected == 0 else {
        throw TestFailure("connect: \(String(cString: strerror(errno)))")
      }
      let bytes = Array(raw.utf8)
      _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
      var answer: [UInt8] = []
      var chunk = [UInt8](repeating: 0, count: 16384)
      while true {
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count <= 0 { break }
        answer.append(contentsOf: chunk[0..<count])
      }
      let text = String(decoding: answer, as: UTF8.self)
      let statusLine = text.prefix { $0 != "\r" }.split(separator: " ")
      guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
        throw TestFailure("no HTTP answer to \(raw.debugDescription): \(text.debugDescription)")
      }
      let body = text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
      return (status, body)
    }

    func get(_ target: String) throws -> (status: Int, body: String) {
      try exchange("GET \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n\r\n")
    }
  }

  @Test func badQueriesGetAStatusAndAMessageThatSaysWhatToFix() throws {
    let fixture = try Fixture()
    let now = Int64(Date().timeIntervalSince1970 * 1000)
    let cases: [(target: String, status: Int, says: String)] = [
      ("/nowhere", 404, "no such path"),
      ("/api/profile?from=yesterday", 400, "from must be Unix milliseconds"),
      ("/api/profile?to=%ZZ", 400, ""),
      ("/api/profile?from=\(now)&to=\(now - 1000)", 400, "is after to"),
      ("/api/profile?pid=twelve", 400, "pid must be a number"),
      ("/api/profile?from=0&to=\(now)", 413, "--max-query-range"),
      ("/api/profile?from=\(Int64.min)&to=\(Int64.max)", 413, "--max-query-range"),
      ("/api/traces/not-hex/profile", 400, ""),
      ("/api/traces/\(String(repeating: "a", count: 32))/profile?spanId=zz", 400, ""),
    ]
    for item in cases {
      let (status, body) = try fixture.get(item.target)
      #expect(status == item.status, "\(item.target): \(status) \(body)")
      #expect(item.says.isEmpty || body.contains(item.says), "\(item.target): \(body)")
    }
    // A good query on the empty store still answers.
    #expect(try fixture.get("/api/profile?from=\(now - 60_000)&to=\(now)").status == 200)
  }

  @Test func malformedRequestsAreRefusedAndTheServerKeepsServing() throws {
    let fixture = try Fixture()
    let host = "Host: 127.0.0.1:\(fixture.port)\r\n"
    let cases: [(raw: String, status: Int)] = [
      ("NONSENSE\r\n\r\n", 400),
      ("GET /metrics\r\n\r\n", 400),
      ("POST /api/profile HTTP/1.1\r\n\(host)Content-Length: 2\r\n\r\n{}", 405),
      ("GET /metrics HTTP/1.1\r\n\(host)a header without a colon\r\n\r\n", 400),
      ("GET /metrics HTTP/1.1\r\n\(host)Content-Length: 5\r\n\r\nhello", 413),
      ("GET /metrics HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\n", 413),
      ("GET /metrics HTTP/1.1\r\nHost: attacker.example\r\n\r\n", 403),
      (
        "GET /metrics HTTP/1.1\r\n\(host)X-Fill: \(String(repeating: "x", count: 70_000))\r\n\r\n",
        431
      ),
    ]
    for item in cases {
      let (status, body) = try fixture.exchange(item.raw)
      #expect(status == item.status, "\(item.raw.prefix(60).debugDescription): \(status) \(body)")
    }
    let (status, metrics) = try fixture.get("/metrics")
    #expect(status == 200)
    #expect(metrics.contains("flamespan_export_windows_restored_total"))
    #expect(try fixture.get("/healthz").status == 200)
  }
}
