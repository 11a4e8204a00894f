#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The one conversion from kernel time to wall-clock time. BPF programs stamp events with
/// CLOCK_MONOTONIC (`bpf_ktime_get_ns`); spans and profiles are exported in Unix nanoseconds.
public struct KernelClock: Sendable, Equatable {
  /// Unix nanoseconds minus CLOCK_MONOTONIC nanoseconds at the moment the clocks were read. Wall-clock
  /// steps (NTP, an operator) after that moment are not followed: read a new clock per window for that.
  public var monotonicToUnixNanos: Int64

  public init(monotonicToUnixNanos: Int64) {
    self.monotonicToUnixNanos = monotonicToUnixNanos
  }

  /// Reads both clocks now; the monotonic one twice, around the wall clock, so the offset is off by at
  /// most half the time the reads took.
  public static func now() -> KernelClock {
    let before = monotonicNanos()
    let wall = unixNanos()
    let after = monotonicNanos()
    let middle = before + (after &- before) / 2
    return KernelClock(monotonicToUnixNanos: wall &- Int64(clamping: middle))
  }

  /// A CLOCK_MONOTONIC time as Unix nanoseconds.
  public func unixNanos(monotonic: UInt64) -> Int64 {
    Int64(clamping: monotonic) &+ monotonicToUnixNanos
  }

  /// CLOCK_MONOTONIC now, the clock of BPF timestamps.
  public static func monotonicNanos() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
  }

  /// CLOCK_REALTIME now, in nanoseconds since the Unix epoch.
  public static func unixNanos() -> Int64 {
    var time = timespec()
    clock_gettime(CLOCK_REALTIME, &time)
    return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
  }
}
