import FlamespanModel
import FlamespanTestSupport
import Foundation
import Testing

@testable import FlamespanAgent

/// The export queue against a real HTTP server on loopback: retry with exponential backoff, what is
/// retried and what is refused for good, the window and byte bounds, keep-alive and transport errors.
@Suite struct ExportQueueTests {
  static func request(_ destination: String, port: UInt16, path: String, bytes: Int = 16)
    -> ExportRequest
  {
    ExportRequest(
      destination: destination, endpoint: HTTPEndpoint(host: "127.0.0.1", port: port, target: path),
      headers: [("x-api-key", "secret"), ("Content-Type", "application/x-protobuf")],
      body: (0..<bytes).map { UInt8(truncatingIfNeeded: $0) })
  }

  static func fastLimits() -> ExportQueueLimits {
    var limits = ExportQueueLimits()
    limits.initialBackoffNanos = 100_000_000
    limits.maximumBackoffNanos = 400_000_000
    limits.requestTimeoutSeconds = 5
    return limits
  }

  @Test func aFailedRequestIsRetriedWithDoublingBackoffUntilDelivered() throws {
    // 503, 500, 429, 408, 503, then 200: five failures, each retried after a longer wait.
    let statuses = [503, 500, 429, 408, 503]
    let server = try LoopbackHTTPServer { index, _ in index < statuses.count ? statuses[index] : 200
    }
    let queue = ExportQueue(limits: Self.fastLimits(), log: { _ in })
    queue.start()
    queue.enqueue(
      ExportBatch(
        sequence: 1, requests: [Self.request("otlp-traces", port: server.port, path: "/v1/traces")])
    )
    let received = server.waitForRequests(6, seconds: 30)
    #expect(waitUntil(seconds: 10) { queue.snapshot.windowsExported == 1 })
    #expect(queue.drain(until: KernelClock.monotonicNanos()) == 0)
    try #require(received.count == 6, "\(received.count) requests arrived")
    let counters = queue.snapshot
    #expect(counters.exportErrors["otlp-traces"] == 5)
    #expect(counters.requestsSent["otlp-traces"] == 1)
    #expect(counters.windowsQueued == 0 && counters.windowsDropped == 0)
    #expect(counters.lastError?.contains("HTTP 503") == true, "\(counters.lastError ?? "")")
    // Backoffs of 100, 200, 400, 400, 400 ms (doubling, capped), each jittered down to no less than half.
    let minimumGaps: [UInt64] = [50, 100, 200, 200, 200].map { $0 * 1_000_000 }
    for (index, minimum) in minimumGaps.enumerated() {
      let gap = received[index + 1].arrivedNanos - received[index].arrivedNanos
      #expect(gap >= minimum, "retry \(index + 1) came after \(gap / 1_000_000) ms")
    }
    #expect(Set(received.map(\.body)).count == 1, "every attempt sends the same body")
    #expect(received[0].headers["x-api-key"] == "secret")
  }

  @Test func clientErrorsAreRefusedForGoodAndNotRetried() throws {
    let server = try LoopbackHTTPServer { _, path in path.hasPrefix("/bad") ? 400 : 200 }
    let queue = ExportQueue(limits: Self.fastLimits(), log: { _ in })
    queue.start()
    queue.enqueue(
      ExportBatch(
        sequence: 1,
        requests: [
          Self.request("otlp-profiles", port: server.port, path: "/bad/profiles"),
          Self.request("otlp-traces", port: server.port, path: "/ok/traces"),
        ]))
    #expect(waitUntil(seconds: 20) { queue.snapshot.windowsExported == 1 })
    #expect(queue.drain(until: KernelClock.monotonicNanos()) == 0)
    let counters = queue.snapshot
    #expect(counters.requestsRejected["otlp-profiles"] == 1)
    #expect(counters.requestsSent["otlp-traces"] == 1)
    #expect(counters.exportErrors.isEmpty)
    #expect(server.received.map(\.path) == ["/bad/profiles", "/ok/traces"])
  }

  @Test func newerWindowsWaitBehindARetriedOneSoOrderIsKept() throws {
    let server = try LoopbackHTTPServer { index, _ in index < 2 ? 503 : 200 }
    let queue = ExportQueue(limits: Self.fastLimits(), log: { _ in })
    queue.start()
    for sequence in 1...3 {
      queue.enqueue(
        ExportBatch(
          sequence: sequence,
          requests: [Self.request("otlp-traces", port: server.port, path: "/w\(sequence)")]))
    }
    let received = server.waitForRequests(5, seconds: 30)
    #expect(waitUntil(seconds: 10) { queue.snapshot.windowsExported == 3 })
    #expect(queue.drain(until: KernelClock.monotonicNanos()) == 0)
    #expect(received.map(\.path) == ["/w1", "/w1", "/w1", "/w2", "/w3"])
  }

  @Test func overTheWindowBoundTheOldestWindowsAreDroppedAndCounted() {
    var limits = Self.fastLimits()
    limits.maximumWindows = 3
    final class Lines: @unchecked Sendable {
      let lock = NSLock()
      var lines: [String] = []
    }
    let logged = Lines()
    // Not started: nothing is sent, so the queue's contents are exactly what the bound left.
    let queue = ExportQueue(
      limits: limits,
      log: { line in logged.lock.withLock { logged.lines.append(line) } })
    for sequence in 1...5 {
      queue.enqueue(
        ExportBatch(
          sequence: sequence, requests: [Self.request("otlp-traces", port: 9, path: "/")],
          name: "w\(sequence)"))
    }
    let counters = queue.snapshot
    #expect(queue.queuedNames == ["w3", "w4", "w5"])
    #expect(counters.windowsDropped == 2 && counters.windowsQueued == 3)
    #expect(counters.windowsEnqueued == 5)
    #expect(counters.bytesQueued == 3 * 16)
    #expect(logged.lock.withLock { logged.lines.count } == 2)
    #expect(queue.drain(until: KernelClock.monotonicNanos()) == 3)
  }

  @Test func overTheByteBoundTheOldestGoButTheNewestWindowAlwaysStays() {
    var limits = Self.fastLimits()
    limits.maximumBytes = 1000
    let queue = ExportQueue(limits: limits, log: { _ in })
    for sequence in 1...4 {
      queue.enqueue(
        ExportBatch(
          sequence: sequence,
          requests: [Self.request("otlp-traces", port: 9, path: "/", bytes: 400)],
          name: "w\(sequence)"))
    }
    #expect(queue.queuedNames == ["w3", "w4"])
    #expect(queue.snapshot.bytesQueued == 800 && queue.snapshot.windowsDropped == 2)
    // One window over the whole bound is kept alone rather than never sent.
    queue.enqueue(
      ExportBatch(
        sequence: 5, requests: [Self.request("otlp-traces", port: 9, path: "/", bytes: 5000)],
        name: "big"))
    #expect(queue.queuedNames == ["big"])
    #expect(queue.snapshot.windowsDropped == 4)
    #expect(queue.drain(until: KernelClock.monotonicNanos()) == 1)
  }

  @Test func oneConnectionCarriesEveryWindow() throws {
    let server = try LoopbackHTTPServer()
    let queue = ExportQueue(limits: Self.fastLimits(), log: { _ in })
    queue.start()
    for sequence in 1...5 {
      queue.enqueue(
        ExportBatch(
          sequence: sequence,
          requests: [Self.request("otlp-traces", port: server.port, path: "/v1/traces")]))
      // One at a time, as windows come: each finds the connection the last one left open.
      #expect(waitUntil(seconds: 20) { queue.snapshot.windowsExported == sequence })
    }
    #expect(queue.drain(until: KernelClock.monotonicNanos()) == 0)
    #expect(server.received.count == 5)
    #expect(
      server.connectionsAccepted == 1, "keep-alive: \(server.connectionsAccepted) connections")
  }

  @Test func anUnreachableCollectorIsRetriedAndTheErrorNamesTheURLAndErrno() throws {
    let server = try LoopbackHTTPServer()
    server.stop()
    let queue = ExportQueue(limits: Self.fastLimits(), log: { _ in })
    queue.start()
    queue.enqueue(
      ExportBatch(
        sequence: 1, requests: [Self.request("otlp-traces", port: server.port, path: "/v1/traces")]
      ))
    #expect(waitUntil(seconds: 20) { (queue.snapshot.exportErrors["otlp-traces"] ?? 0) >= 2 })
    let began = KernelClock.monotonicNanos()
    #expect(queue.drain(until: began + 300_000_000) == 1, "the window stays queued")
    #expect(KernelClock.monotonicNanos() - began < 5_000_000_000, "drain keeps to its deadline")
    let error = queue.snapshot.lastError ?? ""
    #expect(error.contains("http://127.0.0.1:\(server.port)/v1/traces"), "\(error)")
    #expect(error.contains("Connection refused"), "\(error)")
  }

  @Test func urlsParseWithTheirSchemeAndDefaultPorts() throws {
    let secure = try HTTPEndpoint(parsing: "https://collector.example/otlp")
    #expect(secure.secure && secure.port == 443 && secure.target == "/otlp")
    #expect(
      secure.appendingPath("/v1/traces").description
        == "https://collector.example:443/otlp/v1/traces")
    let plain = try HTTPEndpoint(parsing: "http://[::1]:4318")
    #expect(!plain.secure && plain.host == "::1" && plain.port == 4318 && plain.target == "/")
    #expect(throws: ExportTransportError.self) { try HTTPEndpoint(parsing: "ftp://x") }
    #expect(throws: ExportTransportError.self) { try HTTPEndpoint(parsing: "https://:443") }
    #expect(throws: ExportTransportError.self) { try HTTPEndpoint(parsing: "http://h:99999") }
  }
}
