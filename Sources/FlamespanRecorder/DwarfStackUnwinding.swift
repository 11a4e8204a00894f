import FlamespanBPF
import FlamespanProcess
import FlamespanUnwinder
import Glibc

/// DWARF mode: replaces each sample's frame-pointer user stack with the stack unwound from its copy, as the
/// samples arrive, so only addresses (never 16 KiB copies) are kept.
struct DwarfStackUnwinding {
  let unwinder = Unwinder()
  private(set) var stacksUnwound = 0
  private(set) var stacksComplete = 0
  /// Stacks whose DWARF unwind stopped early (no usable CFI, or deeper than the copy) and continued on
  /// the kernel's frame-pointer walk from a frame both walks found.
  private(set) var framePointerSplices = 0
  /// CPU time spent unwinding, for the summary.
  private(set) var unwindNanos: UInt64 = 0

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
    guard var maps = tracker.maps(pid: sample.pid, at: sample.timeNanos) else {
      return (sample, "[user stack not unwound: the process's mappings could not be read]")
    }
    var result = run(copy, maps: maps)
    // A frame in no mapping usually means a library dlopen'ed after the last snapshot: read the maps
    // again (rate-limited) and retry once.
    if case .unknownCode(_, let reason) = result.end, reason == UnwindEnd.noMappingReason {
      var probe = sample
      probe.userStack = result.addresses
      if rescans.refreshIfNeeded(for: probe, tracker: tracker),
        let fresh = tracker.maps(pid: sample.pid, at: sample.timeNanos)
      {
        maps = fresh
        result = run(copy, maps: maps)
      }
    }
    var unwound = sample
    unwound.userStackCopy = nil
    unwound.userStack = result.addresses
    switch result.end {
    case .reachedEnd:
      stacksComplete += 1
      return (unwound, nil)
    case .frameLimit: break
    case .unknownCode, .corruptCFI, .truncated:
      // Code without usable CFI (JIT output often keeps frame pointers), or a stack deeper than the copy:
      // if the kernel's frame-pointer walk passed through the very same frame, its callers from there on
      // are what fp mode would show, read from the live stack rather than the copy.
      if let last = result.addresses.last, let index = sample.userStack.firstIndex(of: last),
        index + 1 < sample.userStack.count
      {
        framePointerSplices += 1
        unwound.userStack = result.addresses + sample.userStack[(index + 1)...]
        return (unwound, nil)
      }
    }
    switch result.end {
    case .reachedEnd: return (unwound, nil)
    case .unknownCode, .corruptCFI:
      return (unwound, "[user stack incomplete: \(Self.markerReason(result.end))]")
    case .truncated(let reason):
      if copy.bytes.isEmpty, let errno = copy.stopErrno {
        return (
          unwound,
          "[user stack not copied: \(String(cString: strerror(errno))) at the stack pointer]"
        )
      }
      guard reason.contains("beyond") else {
        return (unwound, "[user stack incomplete: \(reason)]")
      }
      return (unwound, "[user stack truncated: deeper than the \(copy.bytes.count)-byte copy]")
    case .frameLimit:
      return (unwound, "[user stack truncated: more than \(result.addresses.count) frames]")
    }
  }

  func summary(copyFailures: UInt64) -> UnwindingSummary {
    UnwindingSummary(
      stacksUnwound: stacksUnwound, stacksComplete: stacksComplete,
      framePointerSplices: framePointerSplices, cpuNanos: unwindNanos,
      filesParsed: unwinder.statistics.filesParsed, copyFailures: copyFailures)
  }

  private func run(_ copy: UserStackCopy, maps: ProcessMaps) -> UnwoundStack {
    unwinder.unwind(
      registers: copy.registers, stack: copy.bytes, stackStart: copy.registers.sp, maps: maps)
  }

  /// The reason without addresses, so equal causes aggregate into one marker frame.
  static func markerReason(_ end: UnwindEnd) -> String {
    switch end {
    case .unknownCode(_, let reason): return reason
    case .corruptCFI(_, let reason): return "corrupt CFI: \(reason)"
    default: return end.description
    }
  }

  static func threadCPUNanos() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
  }
}
