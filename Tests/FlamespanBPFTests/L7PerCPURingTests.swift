import FlamespanBPF
import FlamespanTestSupport
import Foundation
import Testing

/// Exchange records go to a ring buffer of the CPU that finished the exchange. A server pinned to each
/// online CPU must have every one of its requests read back: a reader that missed one CPU's ring would
/// lose exactly the spans of the server pinned there.
@Suite(.serialized) struct L7PerCPURingTests {
  @Test(.requires(.bpf, .tool("curl"), .tool("taskset"))) func everyCPUsRingIsRead() throws {
    let cpus = ProcessInfo.processInfo.activeProcessorCount
    let bin = try TestEnvironment.buildSamples(into: TestEnvironment.temporaryDirectory("l7rings"))
    var servers: [LoopbackServer] = []
    defer { for server in servers { server.stop() } }
    for cpu in 0..<cpus {
      let server = try LoopbackServer.httpServer(in: bin)
      servers.append(server)
      // Threads inherit the affinity of the thread that creates them: the accepting main thread.
      let pinned = try Run.command(["taskset", "-a", "-p", "-c", "\(cpu)", "\(server.pid)"])
      try #require(pinned.status == 0, "taskset: \(pinned.stderr)")
    }
    let tracer = try L7Tracer(
      configuration: L7TracerConfiguration(pids: servers.map(\.pid), ringBufferBytes: 1 << 20))
    defer { tracer.close() }
    let requests = 25
    var serverSpans: [Int32: Int] = [:]
    func drain() throws {
      try tracer.poll(timeoutMilliseconds: 20) { event in
        if case .exchange(let exchange) = event, exchange.kind == .server {
          serverSpans[exchange.pid, default: 0] += 1
        }
      }
    }
    for server in servers {
      let client = try BackgroundProcess(
        ["curl", "-s", "-o", "/dev/null"]
          + Array(repeating: "http://127.0.0.1:\(server.port)/light", count: requests))
      while client.isRunning { try drain() }
      #expect(client.finish().status == 0)
    }
    let settle = Date().addingTimeInterval(0.5)
    while Date() < settle { try drain() }
    for (cpu, server) in servers.enumerated() {
      #expect(serverSpans[server.pid] == requests, "server pinned to CPU \(cpu)")
    }
    let counters = tracer.counters()
    #expect(counters.eventsLost == 0)
    #expect(Int(counters.exchanges) == requests * cpus, "\(counters)")
  }
}
