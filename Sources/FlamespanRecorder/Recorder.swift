import FlamespanBPF
import FlamespanL7
import FlamespanModel
import FlamespanProcess
import FlamespanRuntimes
import FlamespanSymbolizer
import Glibc

public struct Recording: Sendable {
  public var profile: Profile
  public var summary: RecordingSummary
  /// HTTP spans of the sampled processes (empty when HTTP tracing was off).
  public var spans: [HTTPSpan] = []
  /// Process names by pid, for the spans' resources.
  public var spanProcessNames: [Int32: String] = [:]
}

/// One recording session: load and attach the sampler, stream samples until a stop condition, then
/// symbolize everything in one batch and hand back the profile.
public final class Recorder {
  public let options: RecordingOptions

  public init(options: RecordingOptions) {
    self.options = options
  }

  /// Runs until `stopRequest` asks to stop, the duration passes, the launched command exits, or every
  /// --pid process is gone. A launched command runs in its own process group: a stop request's signal is
  /// forwarded to that group, and the command gets `commandStopGraceNanos` to exit (a forced request, or
  /// the end of the grace, kills the group) before the profile is built. A --pid process is never
  /// signalled. `started` is called once the programs are attached (loading them can take
  /// seconds, mostly in the kernel's verifier): from then on nothing is missed. It gets the warnings so
  /// far (HTTP tracing off, and why), which the summary repeats. `progress` is called about once a second.
  public func record(
    shouldStop: () -> Bool, started: ([String]) -> Void = { _ in },
    progress: (RecordingProgress) -> Void = { _ in }
  ) throws(RecordError) -> Recording {
    try record(
      stopRequest: { shouldStop() ? StopRequest(signal: SIGTERM) : .none }, started: started,
      progress: progress)
  }

  public func record(
    stopRequest: () -> StopRequest, started: ([String]) -> Void = { _ in },
    progress: (RecordingProgress) -> Void = { _ in }
  ) throws(RecordError) -> Recording {
    for pid in options.pids ?? [] where !ProcessInspector.exists(pid: pid) {
      throw RecordError(.noSuchProcess, errno: ESRCH, message: "no process with pid \(pid)")
    }
    let filtering = options.pids != nil || options.command != nil
    // In-kernel aggregation has no per-sample records to carry a stack copy, so it stays on frame pointers.
    let copiesStacks = options.unwinding.copiesStacks && !options.aggregateInKernel
    // The L7 tracer loads first: it owns the active-span map the sampler reads at every sample.
    var spanCollector: HTTPSpanCollector?
    var warnings: [String] = []
    if options.traceHTTP && !options.aggregateInKernel {
      let (collector, warning) = HTTPSpanCollector.start(
        pids: filtering ? (options.pids ?? []) : nil, hooks: options.httpHooks)
      spanCollector = collector
      if let warning { warnings.append(warning) }
    }
    let sampler: CPUSampler
    do {
      sampler = try CPUSampler(
        configuration: SamplerConfiguration(
          frequency: options.frequency, pids: filtering ? (options.pids ?? []) : nil,
          aggregateInKernel: options.aggregateInKernel,
          activeSpanMap: spanCollector?.activeSpanMap,
          userStackCopyBytes: copiesStacks ? options.userStackCopyBytes : nil))
    } catch {
      throw RecordError(error)
    }
    defer { sampler.close() }

    // The filters follow what the pids fork from now on; what they forked before is added here. The walk
    // repeats until it finds nothing new, so a child forked by a descendant found in the last walk is not
    // missed either.
    var targets = options.pids ?? []
    if !targets.isEmpty {
      var known = Set(targets)
      for _ in 0..<4 {
        let found = ProcessInspector.descendants(of: Array(known)).filter { !known.contains($0) }
        if found.isEmpty { break }
        for pid in found {
          do throws(BPFError) {
            try sampler.addTarget(pid: pid)
            try spanCollector?.addTarget(pid: pid)
          } catch { throw RecordError(error) }
        }
        known.formUnion(found)
        targets += found
      }
    }
    let tracker = ProcessTracker()
    for pid in targets {
      tracker.snapshot(pid: pid, at: ProcessInspector.monotonicNanos())
    }
    var launched: CommandLauncher?
    if let command = options.command {
      let launcher = try CommandLauncher(arguments: command)
      launched = launcher
      do {
        try spanCollector?.addTarget(pid: launcher.pid)
        try sampler.addTarget(pid: launcher.pid)
      } catch { throw RecordError(error) }
      launcher.release()
    }

    started(warnings)
    let wallStart = KernelClock.unixNanos()
    let start = ProcessInspector.monotonicNanos()
    var aggregator = SampleAggregator()
    var malformed = 0
    var rescans = MapsRescanPolicy()
    // One registry for unwinding and naming: both run on this thread.
    let runtimes =
      options.unwinding == .automatic ? RuntimeRegistry(runtimes: RuntimeCatalog.standard()) : nil
    var unwinding = StackUnwinding(
      runtimes: runtimes, publisher: InterpreterStacks.publisher(to: sampler))
    var execsAwaitingMaps: [Int32: UInt64] = [:]
    func readPendingMaps() {
      for (pid, time) in execsAwaitingMaps { tracker.snapshot(pid: pid, at: time) }
      execsAwaitingMaps.removeAll()
    }
    var lastProgress = start
    let aggregateInKernel = options.aggregateInKernel
    let handle = { (event: SamplerEvent) in
      switch event {
      case .sample(let sample):
        unwinding.add(sample, to: &aggregator, tracker: tracker, rescans: &rescans)
      case .process(.exec, let pid, let time, _):
        aggregator.noteExec(pid: pid)
        unwinding.noteExec(pid: pid)
        if aggregateInKernel {
          // No samples arrive to trigger a rescan once the loader has mapped the libraries, so wait a tick.
          execsAwaitingMaps[pid] = time
        } else if tracker.snapshot(pid: pid, at: time) {
          aggregator.noteSnapshot(pid: pid, time: time)
        }
      case .process(.exit, let pid, let time, _):
        // Only a process with samples needs its maps; any other exit on the machine is none of our business.
        if aggregator.processes.contains(pid) && !tracker.hasSnapshot(pid: pid) {
          tracker.snapshot(pid: pid, at: time)
        }
      case .malformed:
        malformed += 1
      }
    }

    while true {
      do {
        // The two ring buffers are separate; a shorter wait keeps the L7 one drained under request load.
        try sampler.poll(timeoutMilliseconds: spanCollector == nil ? 100 : 20, handler: handle)
        try spanCollector?.drain()
      } catch {
        throw RecordError(error)
      }
      let now = ProcessInspector.monotonicNanos()
      let request = stopRequest()
      if request.signal != nil {
        // At once, so the command starts its shutdown while the rings are drained and closed.
        launched?.forward(request)
        break
      }
      if let limit = options.durationNanos, now - start >= limit { break }
      if let launched, launched.hasExited() { break }
      if launched == nil, let pids = options.pids, !pids.isEmpty,
        pids.allSatisfy({ !ProcessInspector.exists(pid: $0) })
      {
        break
      }
      if now - lastProgress >= 1_000_000_000 {
        lastProgress = now
        if options.aggregateInKernel {
          readPendingMaps()
          for pid in sampler.pidsInKernelAggregates() where !tracker.hasSnapshot(pid: pid) {
            tracker.snapshot(pid: pid, at: 0)
          }
        }
        progress(
          RecordingProgress(
            elapsedNanos: now - start, samples: aggregator.sampleCount,
            lostSamples: sampler.counters().lostSamples, processes: aggregator.processes.count))
      }
    }
    let elapsed = ProcessInspector.monotonicNanos() - start
    // Records already in the ring buffer belong to this recording.
    do {
      while try sampler.poll(timeoutMilliseconds: 0, handler: handle) > 0 {}
    } catch {
      throw RecordError(error)
    }
    readPendingMaps()
    for (sample, count) in sampler.takeKernelAggregates() {
      if !tracker.hasSnapshot(pid: sample.pid) { tracker.snapshot(pid: sample.pid, at: 0) }
      aggregator.add(sample, count: Int64(count))
    }
    let counters = sampler.counters()
    let sampledCPUs = sampler.sampledCPUs
    sampler.close()
    if let launched, let note = launched.stop(stopRequest: stopRequest) {
      warnings.append(note)
    }

    let http = spanCollector?.finish()

    let symbolizer = Symbolizer(options: options.symbolizer)
    var samples = StackResolver(tracker: tracker, symbolizer: symbolizer, runtimes: runtimes)
      .resolve(aggregator)
    if let spanCollector { samples = spanCollector.label(samples) }
    let summary = RecordingSummary(
      durationNanos: elapsed, frequency: options.frequency, sampledCPUs: sampledCPUs,
      samplesReceived: aggregator.sampleCount, counters: counters, malformedRecords: malformed,
      processes: aggregator.processes.count, mapsSnapshots: tracker.snapshotsTaken,
      processesGoneBeforeMaps: aggregator.processes.filter { !tracker.hasSnapshot(pid: $0) }.count,
      commandExitStatus: launched?.exitStatus,
      unwinding: copiesStacks
        ? unwinding.summary(mode: options.unwinding, copyFailures: counters.stackCopyFailed) : nil,
      http: http?.summary, warnings: warnings)
    let profile = Profile(
      samples: samples, periodNanos: Int64(1_000_000_000 / max(options.frequency, 1)),
      startTimeNanos: wallStart, durationNanos: Int64(elapsed), comments: summary.comments)
    return Recording(
      profile: profile, summary: summary, spans: http?.spans ?? [],
      spanProcessNames: http?.processNames ?? [:])
  }
}
