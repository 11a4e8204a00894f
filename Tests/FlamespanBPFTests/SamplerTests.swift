import FlamespanBPF
import FlamespanTestSupport
import Foundation
import Testing

/// Loads the real sampler into the running kernel.
@Suite(.serialized) struct SamplerTests {
  @Test(.requires(.bpf)) func samplesABusyThreadOfThisProcessWithBothStacks() throws {
    let me = getpid()
    let sampler = try CPUSampler(configuration: SamplerConfiguration(frequency: 199, pids: [me]))
    defer { sampler.close() }
    #expect(!sampler.sampledCPUs.isEmpty)

    let spinner = Spinner()
    let thread = Thread { spinner.run() }
    thread.start()
    defer { spinner.stop() }

    var samples: [RawSample] = []
    let deadline = Date().addingTimeInterval(1.5)
    while Date() < deadline {
      try sampler.poll(timeoutMilliseconds: 100) { event in
        if case .sample(let sample) = event { samples.append(sample) }
      }
    }
    spinner.stop()
    let (tid, cpuSeconds) = spinner.waitForResult()
    // Drain what the kernel wrote after the deadline.
    try sampler.poll(timeoutMilliseconds: 50) { event in
      if case .sample(let sample) = event { samples.append(sample) }
    }
    let counters = sampler.counters()
    // The spinner's own CPU time says how many samples it must have drawn, however busy the machine was.
    let spinnerSamples = samples.filter { $0.tid == tid }.count
    #expect(cpuSeconds > 0.2, "the spinner barely ran (\(cpuSeconds) s)")
    #expect(
      Double(spinnerSamples) >= 0.8 * cpuSeconds * 199,
      "\(spinnerSamples) samples for \(cpuSeconds) CPU s")
    // The filter keeps this process and what it forks (other tests' children): never init or kernel threads.
    #expect(samples.filter { $0.tid == tid }.allSatisfy { $0.pid == me })
    #expect(
      !samples.contains {
        $0.pid <= 2 || $0.userStack.isEmpty && $0.threadName.hasPrefix("kworker")
      })
    #expect(samples.contains { !$0.userStack.isEmpty })
    #expect(counters.samples >= UInt64(samples.count))
    #expect(counters.ringBufferFull == 0)
    #expect(samples.allSatisfy { $0.span == nil })
  }

  /// Run as an unprivileged child so that root CI exercises the refusal path too; only root can drop
  /// to another user (without root, the CLI tests cover the refusal).
  @Test(.requires(.root, .tool("setpriv")))
  func refusesWithAClearMessageWithoutPrivileges() throws {
    let result = try Run.command([
      "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
      TestEnvironment.flamespanBinary, "record", "-d", "1", "-o", "/tmp/never.folded",
    ])
    #expect(result.status != 0)
    #expect(result.stderr.contains("CAP_BPF+CAP_PERFMON"), "stderr: \(result.stderr)")
  }
}

/// A thread that burns CPU until stopped, then reports its tid and the CPU time it used.
final class Spinner: @unchecked Sendable {
  private let lock = NSLock()
  private var stopped = false
  private var result: (tid: Int32, cpuSeconds: Double)?

  func run() {
    var x: UInt64 = 1
    while !lock.withLock({ stopped }) {
      for _ in 0..<10_000 { x = x &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407 }
    }
    blackHole(x)
    var used = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &used)
    // gettid() is not exported to Swift; /proc/thread-self names this thread as PID/task/TID.
    let link =
      (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self")) ?? ""
    let tid = Int32(link.split(separator: "/").last ?? "") ?? -1
    lock.withLock { result = (tid, Double(used.tv_sec) + Double(used.tv_nsec) / 1e9) }
  }

  func stop() { lock.withLock { stopped = true } }

  func waitForResult() -> (tid: Int32, cpuSeconds: Double) {
    while true {
      if let result = lock.withLock({ result }) { return result }
      usleep(1000)
    }
  }
}

@inline(never) func blackHole(_ value: UInt64) { if value == 42 { print("") } }
