import FlamespanModel
import Foundation

/// Keeps every maps snapshot per pid with the (monotonic ns) time it was taken, so a sample resolves against
/// the image that was mapped when it was taken, even after exec or exit.
public final class ProcessTracker: @unchecked Sendable {
  private struct Snapshot {
    let time: UInt64
    let maps: ProcessMaps
  }

  private let lock = NSLock()
  private let buildIDCache: BuildIDCache
  // Per pid, ordered by time.
  private var snapshots: [Int32: [Snapshot]] = [:]
  private var snapshotsTakenCount = 0
  private var processesGoneCount = 0

  public init(buildIDCache: BuildIDCache = BuildIDCache()) {
    self.buildIDCache = buildIDCache
  }

  /// Reads /proc/PID/maps now and stores it as the snapshot valid from `time` on. Returns false if the process
  /// is gone (or cannot be read).
  @discardableResult public func snapshot(pid: Int32, at time: UInt64) -> Bool {
    let maps: ProcessMaps
    do {
      maps = try ProcessInspector.readMaps(pid: pid, buildIDCache: buildIDCache)
    } catch {
      if error.code == .noSuchProcess { lock.withLock { processesGoneCount += 1 } }
      return false
    }
    // A zombie (or a process between exit_mm and reaping) still has /proc/PID/maps, but it is empty. Stored,
    // it would hide the real snapshot taken earlier from every later lookup.
    guard !maps.mappings.isEmpty else {
      lock.withLock { processesGoneCount += 1 }
      return false
    }
    store(maps, at: time)
    return true
  }

  /// Adds a snapshot read elsewhere (or built by hand), valid from `time` on.
  public func store(_ maps: ProcessMaps, at time: UInt64) {
    lock.withLock {
      snapshotsTakenCount += 1
      var list = snapshots[maps.pid, default: []]
      let index = list.firstIndex { $0.time > time } ?? list.count
      // A rescan that found nothing new adds no information; keeping the earlier one keeps memory flat.
      if index > 0, list[index - 1].maps.mappings == maps.mappings { return }
      list.insert(Snapshot(time: time, maps: maps), at: index)
      snapshots[maps.pid] = list
    }
  }

  public func hasSnapshot(pid: Int32) -> Bool {
    lock.withLock { snapshots[pid] != nil }
  }

  /// The mapping for `address` in the snapshot of `pid` in force at `time` (the latest taken at or before `time`;
  /// if none is that old, the earliest one, since a process's first sample is usually seen before its maps are read).
  public func mapping(pid: Int32, address: UInt64, at time: UInt64) -> Mapping? {
    maps(pid: pid, at: time)?.mapping(containing: address)
  }

  /// The whole snapshot of `pid` in force at `time`, by the same rule as `mapping(pid:address:at:)`.
  public func maps(pid: Int32, at time: UInt64) -> ProcessMaps? {
    lock.withLock {
      guard let list = snapshots[pid], let first = list.first else { return nil }
      var low = 0
      var high = list.count
      while low < high {
        let middle = (low + high) / 2
        if list[middle].time <= time { low = middle + 1 } else { high = middle }
      }
      return low == 0 ? first.maps : list[low - 1].maps
    }
  }

  /// Drops snapshots no sample at or after `time` can need: per pid, all but the one in force at `time` and
  /// later ones. Long-running recorders call this once a window of samples has been resolved.
  public func discardSnapshots(before time: UInt64) {
    lock.withLock {
      for (pid, list) in snapshots {
        let inForce = list.lastIndex { $0.time <= time } ?? 0
        if inForce > 0 { snapshots[pid] = Array(list[inForce...]) }
      }
    }
  }

  /// Forgets a process entirely, for pids known to be gone and fully resolved.
  public func forget(pid: Int32) {
    _ = lock.withLock { snapshots.removeValue(forKey: pid) }
  }

  public var snapshotsTaken: Int { lock.withLock { snapshotsTakenCount } }
  /// Processes that exited before a snapshot could be read.
  public var processesGone: Int { lock.withLock { processesGoneCount } }
  public var trackedProcesses: Int { lock.withLock { snapshots.count } }
}
