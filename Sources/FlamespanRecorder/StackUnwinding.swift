import FlamespanBPF
import FlamespanProcess
import FlamespanRuntimes
import FlamespanUnwinder
import Glibc

/// Stack-copy modes (auto, dwarf): replaces each sample's frame-pointer user stack with the stack unwound
/// from its copy, as the samples arrive, so only addresses (never 16 KiB copies) are kept.
struct StackUnwinding {
  let unwinder = Unwinder()
  /// Runtime plug-ins and frame pointers through code without CFI (auto); DWARF CFI only (dwarf).
  let runtimes: RuntimeRegistry?
  private(set) var stacksUnwound = 0
  private(set) var stacksComplete = 0
  /// Stacks whose unwind stopped early and continued on the kernel's frame-pointer walk from a frame
  /// both walks found.
  private(set) var framePointerSplices = 0
  /// CPU time spent unwinding, for the summary.
  private(set) var unwindNanos: UInt64 = 0
  /// Per process: stacks unwound and why those that stopped early stopped.
  private(set) var processes: [Int32: ProcessStackStops] = [:]
  /// Interpreter frames (CPython): layouts published to the sampler, frames named as samples arrive.
  private var interpreters: InterpreterStacks

  /// `publisher` writes interpreter walk layouts into the sampler; nil leaves interpreter frames out.
  init(runtimes: RuntimeRegistry?, publisher: InterpreterStacks.Publisher? = nil) {
    self.runtimes = runtimes
    self.interpreters = InterpreterStacks(publisher: publisher)
  }

  /// Sets where interpreter layouts are published: a recorder prepares the processes it already knows
  /// before its sampler exists (reading an interpreter's binary takes longer than the sampler takes to
  /// start), then publishes to the sampler the moment it does.
  mutating func publish(to publisher: @escaping InterpreterStacks.Publisher) {
    interpreters.publisher = publisher
  }

  /// Adds one sample to `aggregator`: its copy unwound when it carries one, its maps read again when its
  /// code lies outside them (rate-limited by `rescans`).
  mutating func add(
    _ sample: RawSample, to aggregator: inout SampleAggregator, tracker: ProcessTracker,
    rescans: inout MapsRescanPolicy
  ) {
    // With a stack copy, the kernel's frame-pointer walk of code without frame pointers yields junk
    // addresses that would trigger a maps rescan on every sample; only the sampled instruction counts.
    var probe = sample
    if let copy = sample.userStackCopy, copy.registers.ip != 0 {
      probe.userStack = [copy.registers.ip]
    }
    if rescans.refreshIfNeeded(for: probe, tracker: tracker) {
      aggregator.noteSnapshot(pid: sample.pid, time: sample.timeNanos)
    }
    guard sample.userStackCopy != nil else {
      aggregator.add(sample)
      return
    }
    let snapshots = tracker.snapshotsTaken
    let (unwound, marker) = unwind(sample, tracker: tracker, rescans: &rescans)
    if tracker.snapshotsTaken != snapshots {
      aggregator.noteSnapshot(pid: sample.pid, time: sample.timeNanos)
    }
    aggregator.add(
      unwound, userStackMarker: marker,
      interpreterSplice: interpreterSplice(sample, userStack: unwound.userStack, tracker: tracker))
  }

  /// The sample's interpreter frames and where they go, when its process runs an interpreter the
  /// runtimes know. Also publishes the process's walk layout the first time one is known, so every
  /// later sample carries its frames.
  private mutating func interpreterSplice(
    _ sample: RawSample, userStack: [UInt64], tracker: ProcessTracker
  ) -> InterpreterSplice? {
    guard let runtimes, let maps = tracker.maps(pid: sample.pid, at: sample.timeNanos) else {
      return nil
    }
    let views = runtimes.runtimes(for: maps, now: sample.timeNanos)
    guard !views.isEmpty else { return nil }
    return interpreters.splice(sample, userStack: userStack, maps: maps, views: views)
  }

  /// Attaches the runtimes of a process known before its first sample and publishes its interpreter
  /// layout, if it has one.
  mutating func prepare(pid: Int32, tracker: ProcessTracker, now: UInt64) {
    guard let runtimes, let maps = tracker.maps(pid: pid, at: now) else { return }
    let views = runtimes.runtimes(for: maps, now: now)
    guard !views.isEmpty else { return }
    interpreters.prepare(
      pid: pid, name: ProcessInspector.threadName(pid: pid, tid: pid) ?? "", views: views, now: now)
  }

  /// A new image: the old interpreter layout (if any) no longer describes the process.
  mutating func noteExec(pid: Int32) {
    interpreters.forget(pid: pid)
  }

  /// Returns the sample with its unwound user stack, and the marker text to append when the stack is
  /// incomplete (nil when it reached the outermost frame).
  mutating func unwind(
    _ sample: RawSample, tracker: ProcessTracker, rescans: inout MapsRescanPolicy
  ) -> (sample: RawSample, marker: String?) {
    guard let copy = sample.userStackCopy, copy.registers.sp != 0, copy.registers.ip != 0 else {
      return (sample, nil)
    }
    let started = Self.threadCPUNanos()
    defer { unwindNanos += Self.threadCPUNanos() &- started }
    stacksUnwound += 1
    processes[sample.pid, default: ProcessStackStops(name: sample.threadName)].stacks += 1
    guard var maps = tracker.maps(pid: sample.pid, at: sample.timeNanos) else {
      note(.readError, pid: sample.pid)
      return (sample, "[user stack not unwound: the process's mappings could not be read]")
    }
    var result = run(copy, maps: maps, time: sample.timeNanos)
    // A frame in no mapping usually means a library dlopen'ed after the last snapshot: read the maps
    // again (rate-limited) and retry once.
    if Self.endedOutsideMappings(result.end) {
      var probe = sample
      probe.userStack = result.addresses
      if rescans.refreshIfNeeded(for: probe, tracker: tracker),
        let fresh = tracker.maps(pid: sample.pid, at: sample.timeNanos)
      {
        maps = fresh
        result = run(copy, maps: maps, time: sample.timeNanos)
      }
    }
    var unwound = sample
    unwound.userStackCopy = nil
    unwound.userStack = result.addresses
    guard let reason = result.end.stopReason else {
      stacksComplete += 1
      return (unwound, nil)
    }
    if result.end != .frameLimit {
      // Code without usable CFI, or a stack deeper than the copy: if the kernel's frame-pointer walk
      // passed through the very same frame, its callers from there on are what fp mode would show, read
      // from the live stack rather than the copy.
      if let last = result.addresses.last, let index = sample.userStack.firstIndex(of: last),
        index + 1 < sample.userStack.count
      {
        framePointerSplices += 1
        unwound.userStack = result.addresses + sample.userStack[(index + 1)...]
        return (unwound, nil)
      }
    }
    note(reason, pid: sample.pid)
    return (unwound, Self.marker(for: result.end, copy: copy, frames: result.addresses.count))
  }

  /// Forgets an exited process's runtimes; its counts stay for the summary, bounded by `processLimit`.
  mutating func forget(pid: Int32) {
    runtimes?.forget(pid: pid)
    interpreters.forget(pid: pid)
    if processes.count > Self.processLimit {
      // An always-on agent sees every process of the machine: keep the ones with the most stacks.
      let kept = processes.sorted { $0.value.stacks > $1.value.stacks }.prefix(
        Self.processLimit / 2)
      processes = Dictionary(uniqueKeysWithValues: kept.map { ($0.key, $0.value) })
    }
  }
  static let processLimit = 4096

  private mutating func note(_ reason: StackStopReason, pid: Int32) {
    processes[pid, default: ProcessStackStops(name: "")].stopped[reason, default: 0] += 1
  }

  func summary(mode: UserStackUnwinding, copyFailures: UInt64) -> UnwindingSummary {
    UnwindingSummary(
      mode: mode, stacksUnwound: stacksUnwound, stacksComplete: stacksComplete,
      framePointerSplices: framePointerSplices, cpuNanos: unwindNanos,
      filesParsed: unwinder.statistics.filesParsed, copyFailures: copyFailures,
      processes: processes, runtimeProblems: runtimes?.problems ?? [:],
      interpreters: interpreters.processes,
      interpreterUnknownFrames: interpreters.totalUnknownFrames,
      interpreterSamplesWithoutFrames: interpreters.totalEvalLoopSamplesWithoutFrames)
  }

  private func run(_ copy: UserStackCopy, maps: ProcessMaps, time: UInt64) -> UnwoundStack {
    unwinder.unwind(
      registers: copy.registers, stack: copy.bytes, stackStart: copy.registers.sp, maps: maps,
      runtimes: runtimes?.runtimes(for: maps, now: time) ?? [],
      framePointerFallback: runtimes != nil)
  }

  static func endedOutsideMappings(_ end: UnwindEnd) -> Bool {
    switch end {
    case .unknownCode(_, let reason): return reason == UnwindEnd.noMappingReason
    case .stopped(_, _, let detail): return detail == "the frame pointer chain leads nowhere"
    default: return false
    }
  }

  /// The marker frame appended to an incomplete stack: the reason without addresses, so equal causes
  /// aggregate into one marker frame.
  static func marker(for end: UnwindEnd, copy: UserStackCopy, frames: Int) -> String? {
    switch end {
    case .reachedEnd: return nil
    case .unknownCode(_, let reason): return "[user stack incomplete: \(reason)]"
    case .corruptCFI(_, let reason): return "[user stack incomplete: corrupt CFI: \(reason)]"
    case .stopped(let reason, _, let detail):
      if reason == .copyTooShort {
        return "[user stack truncated: deeper than the \(copy.bytes.count)-byte copy]"
      }
      return "[user stack incomplete: \(reason.rawValue): \(detail)]"
    case .truncated(let reason):
      if copy.bytes.isEmpty, let errno = copy.stopErrno {
        return "[user stack not copied: \(String(cString: strerror(errno))) at the stack pointer]"
      }
      guard reason.contains("beyond") else { return "[user stack incomplete: \(reason)]" }
      return "[user stack truncated: deeper than the \(copy.bytes.count)-byte copy]"
    case .frameLimit:
      return "[user stack truncated: more than \(frames) frames]"
    }
  }

  static func threadCPUNanos() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
  }
}

/// One process's stacks over a recording: how many were unwound, and why those that stopped early
/// stopped.
public struct ProcessStackStops: Sendable, Equatable {
  /// The thread name of its first sample (a process's main thread usually names the program).
  public var name: String
  public var stacks = 0
  public var stopped: [StackStopReason: Int] = [:]

  public init(name: String) { self.name = name }

  public var stoppedTotal: Int { stopped.values.reduce(0, +) }
}
