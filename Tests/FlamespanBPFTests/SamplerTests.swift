import FlamespanBPF
import FlamespanTestSupport
import Foundation
import Testing

/// Loads the real sampler into the running kernel.
@Suite(.serialized) struct SamplerTests {
  @Test func samplesABusyThreadOfThisProcessWithBothStacks() throws {
    guard TestEnvironment.bpfAvailable(for: #function) else {
      #expect(!TestEnvironment.isCI, "CI runs as root, where BPF must work")
      return
    }
    let me = getpid()
    let sampler = try CPUSampler(configuration: SamplerConfiguration(frequency: 199, pids: [me]))
    defer { sampler.close() }
    #expect(!sampler.sampledCPUs.isEmpty)

    let stop = ManagedAtomicFlag()
    let spinner = Thread {
      var x: UInt64 = 1
      while !stop.isSet { x = x &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407 }
      blackHole(x)
    }
    spinner.start()
    defer { stop.set() }

    var samples: [RawSample] = []
    let deadline = Date().addingTimeInterval(1.5)
    while Date() < deadline {
      try sampler.poll(timeoutMilliseconds: 100) { event in
        if case .sample(let sample) = event { samples.append(sample) }
      }
    }
    stop.set()
    let counters = sampler.counters()
    // 1.5 s of one busy thread at 199 Hz is ~300 samples; the filter must keep everything to our pid.
    #expect(samples.count >= 200, "got \(samples.count) samples")
    #expect(samples.allSatisfy { $0.pid == me })
    #expect(samples.contains { !$0.userStack.isEmpty })
    #expect(counters.samples >= UInt64(samples.count))
    #expect(counters.ringBufferFull == 0)
    #expect(samples.allSatisfy { $0.span == nil })
  }

  @Test func refusesWithAClearMessageWithoutPrivileges() throws {
    // Run the check as an unprivileged child so that root CI exercises the refusal path too.
    guard TestEnvironment.toolAvailable("setpriv", for: #function) else {
      #expect(!TestEnvironment.isCI)
      return
    }
    guard geteuid() == 0 else { return }  // without root we cannot drop to another user; covered by the CLI test
    let result = try Run.command([
      "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
      TestEnvironment.flamespanBinary, "record", "-d", "1", "-o", "/tmp/never.folded",
    ])
    #expect(result.status != 0)
    #expect(result.stderr.contains("CAP_BPF+CAP_PERFMON"), "stderr: \(result.stderr)")
  }
}

final class ManagedAtomicFlag: @unchecked Sendable {
  private let lock = NSLock()
  private var value = false
  var isSet: Bool { lock.withLock { value } }
  func set() { lock.withLock { value = true } }
}

@inline(never) func blackHole(_ value: UInt64) { if value == 42 { print("") } }
