import FlamespanExport
import FlamespanModel
import FlamespanOTLP
import FlamespanTestSupport
import Foundation
import Testing

@testable import FlamespanAgent

/// Export over https:// to the real OTLP decoder (tools/otlp-receiver/receiver.py, wrapped in Python's
/// ssl) with a CA and server certificate made by the test with `openssl`: what a trusted collector gets,
/// and what an untrusted one costs (a clear error, the window kept). The exporter tests need no root; the
/// last test runs the whole agent, which does.
@Suite(.serialized) struct AgentTLSExportTests {
  static func profilesRequest(endpoint: HTTPEndpoint) throws -> ExportRequest {
    let profile = Profile(
      samples: (0..<3).map { index in
        ProfileSample(
          stack: [
            ResolvedLocation(
              address: UInt64(0x1000 + index), mapping: nil,
              frames: [SourceFrame(function: "main"), SourceFrame(function: "work\(index)")])
          ], pid: 42, tid: 42, threadName: "tls-test", count: Int64(index + 1))
      }, periodNanos: 52_631_578,
      startTimeNanos: Int64(Date().timeIntervalSince1970) * 1_000_000_000,
      durationNanos: 1_000_000_000)
    let body = try OTLPResourceGroupEncoder.encode([
      OTLPResourceGroup(attributes: [("service.name", .string("tls-test"))], profile: profile)
    ])
    let bodyHeaders = [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "gzip")]
    return ExportRequest(
      destination: "otlp-profiles", endpoint: endpoint, headers: bodyHeaders,
      body: try Gzip.compress(body), bodyHeaders: bodyHeaders)
  }

  /// Certificates made for `label`, and the receiver serving HTTPS with the server's on a port of its
  /// choosing.
  static func tlsReceiver(_ label: String) throws -> (TestCertificates, OTLPReceiver) {
    let certificates = try TestCertificates.make(label: label)
    let receiver = try OTLPReceiver(
      port: 0, directory: certificates.directory,
      tls: (certificates.serverCertificate, certificates.serverKey))
    return (certificates, receiver)
  }

  static func queue(trusting certificate: String?) throws -> ExportQueue {
    var limits = ExportQueueLimits()
    limits.initialBackoffNanos = 100_000_000
    limits.maximumBackoffNanos = 200_000_000
    limits.requestTimeoutSeconds = 10
    let files = certificate.map { ["otlp-profiles": ExportTLSFiles(certificate: $0)] } ?? [:]
    return ExportQueue(limits: limits, client: try ExportHTTPClient(tlsFiles: files), log: { _ in })
  }

  @Test(.requires(.tool("openssl"), .pythonOTLP))
  func aTrustedCollectorReceivesAndDecodesTheWindowOverHTTPS() throws {
    let (certificates, receiver) = try Self.tlsReceiver("tls-trusted")
    defer { receiver.stop() }
    let endpoint = try HTTPEndpoint(
      parsing: "https://127.0.0.1:\(receiver.port)/v1development/profiles")
    let queue = try Self.queue(trusting: certificates.caCertificate)
    queue.start()
    for sequence in 1...3 {
      queue.enqueue(
        ExportBatch(sequence: sequence, requests: [try Self.profilesRequest(endpoint: endpoint)]))
      #expect(waitUntil(seconds: 30, every: 0.2) { queue.snapshot.windowsExported == sequence })
    }
    #expect(queue.drain(until: KernelClock.monotonicNanos()) == 0)
    let entries = receiver.entries(path: "/v1development/profiles")
    try #require(entries.count == 3, "\(entries) \(queue.snapshot)")
    for entry in entries {
      #expect(entry["error"] == nil && entry["status"] as? Int == 200, "\(entry)")
      #expect(entry["samples"] as? Int == 3 && entry["total"] as? Int == 6, "\(entry)")
      #expect(entry["encoding"] as? String == "gzip")
      let resources = entry["resources"] as? [[String: Any]] ?? []
      #expect(resources.first?["service.name"] as? String == "tls-test", "\(resources)")
    }
    // Keep-alive: the three windows came over one TLS connection.
    #expect(Set(entries.compactMap { $0["clientPort"] as? Int }).count == 1, "\(entries)")
  }

  @Test(.requires(.tool("openssl"), .pythonOTLP))
  func anUntrustedCertificateFailsClearlyAndTheWindowStaysQueued() throws {
    let (certificates, receiver) = try Self.tlsReceiver("tls-untrusted")
    defer { receiver.stop() }
    let endpoint = try HTTPEndpoint(
      parsing: "https://127.0.0.1:\(receiver.port)/v1development/profiles")
    // Another CA than the one that signed the server, then the system's bundle, which has neither.
    for trusted in [certificates.otherCACertificate, nil] {
      let queue = try Self.queue(trusting: trusted)
      queue.start()
      queue.enqueue(
        ExportBatch(
          sequence: 1, requests: [try Self.profilesRequest(endpoint: endpoint)], name: "w1"))
      #expect(
        waitUntil(seconds: 30, every: 0.2) {
          (queue.snapshot.exportErrors["otlp-profiles"] ?? 0) >= 2
        })
      #expect(queue.drain(until: KernelClock.monotonicNanos()) == 1, "the window stays queued")
      let counters = queue.snapshot
      #expect(counters.windowsQueued == 1 && counters.windowsExported == 0)
      let error = counters.lastError ?? ""
      #expect(error.contains("certificate verify failed"), "\(error)")
      #expect(
        error.contains("https://127.0.0.1:\(receiver.port)/v1development/profiles"), "\(error)")
      #expect(error.contains("OTEL_EXPORTER_OTLP_CERTIFICATE"), "\(error)")
    }
    #expect(receiver.entries.isEmpty, "nothing crossed an unverified connection")
  }

  @Test(.requires(.bpf, .tool("openssl"), .pythonOTLP))
  func theAgentExportsOverHTTPSWithTheCertificateFromTheEnvironment() throws {
    let (certificates, receiver) = try Self.tlsReceiver("tls-agent")
    defer { receiver.stop() }
    let agent = try BackgroundProcess(
      [
        TestEnvironment.flamespanBinary, "agent", "--export-interval", "1s", "--endpoint",
        "https://127.0.0.1:\(receiver.port)", "--trace-http", "false", "--store", "",
        "--listen", "off", "--status-lines", "false",
      ],
      environment: [
        "OTEL_EXPORTER_OTLP_CERTIFICATE": certificates.caCertificate,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
      ], logs: certificates.directory, label: "agent")
    defer { _ = agent.stop(signal: SIGKILL) }
    let arrived = waitUntil(seconds: 120, every: 0.2) {
      receiver.entries(path: "/v1development/profiles").count >= 2
    }
    #expect(arrived, "\(agent.stderr)")
    // A clean exit is the point here, not its speed (AgentTests times it): a loaded machine may take
    // long to symbolize the window cut at shutdown.
    let (status, _) = agent.stop(signal: SIGTERM, within: 120)
    #expect(status == 0, "\(agent.stderr)")
    let entries = receiver.entries(path: "/v1development/profiles")
    #expect(entries.allSatisfy { $0["error"] == nil && $0["status"] as? Int == 200 }, "\(entries)")
    #expect(entries.allSatisfy { ($0["samples"] as? Int ?? 0) > 0 }, "\(entries)")
    #expect(
      Set(entries.compactMap { $0["clientPort"] as? Int }).count == 1, "keep-alive: \(entries)")
    #expect(
      agent.stderr.contains("profiles to https://127.0.0.1:\(receiver.port)/v1development/profiles")
    )
    #expect(agent.stderr.contains("warning: OTLP protocol grpc"), "\(agent.stderr)")
  }
}
