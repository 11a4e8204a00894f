import FlamespanBPF
import FlamespanProcess

/// Decides when to read a process's maps again. A process's first samples often arrive while the dynamic
/// loader is still mapping its libraries, and dlopen adds code later; a user address that no snapshot
/// covers means the snapshot is stale. Rescans are rate-limited per process so a JIT or a wild address
/// cannot turn every sample into a /proc read.
struct MapsRescanPolicy {
  static let minimumIntervalNanos: UInt64 = 50_000_000

  private var lastRescan: [Int32: UInt64] = [:]
  private(set) var rescans = 0

  /// True when it took a new snapshot at the sample's time.
  mutating func refreshIfNeeded(for sample: RawSample, tracker: ProcessTracker) -> Bool {
    guard let latest = tracker.maps(pid: sample.pid, at: .max) else {
      lastRescan[sample.pid] = sample.timeNanos
      return tracker.snapshot(pid: sample.pid, at: sample.timeNanos)
    }
    guard sample.userStack.contains(where: { latest.mapping(containing: $0) == nil }) else {
      return false
    }
    let last = lastRescan[sample.pid] ?? 0
    guard sample.timeNanos >= last &+ Self.minimumIntervalNanos || last == 0 else { return false }
    lastRescan[sample.pid] = sample.timeNanos
    rescans += 1
    return tracker.snapshot(pid: sample.pid, at: sample.timeNanos)
  }
}
