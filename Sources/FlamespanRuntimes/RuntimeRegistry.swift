import FlamespanModel
import FlamespanProcess

/// Which runtimes each process uses, found by asking every plug-in once per process and again when the
/// process's mappings change (a library or a JIT region appears) or a couple of seconds have passed (a
/// JIT writes its perf map some time after it starts).
///
/// Not thread-safe: each thread that unwinds or symbolizes keeps its own registry.
public final class RuntimeRegistry {
  public let runtimes: [any Runtime]

  private final class Attached {
    var mappings: [Mapping]
    var attachedAt: UInt64
    var refreshedAt: UInt64 = 0
    var views: [any RuntimeProcess]
    var lastUse: UInt64

    init(mappings: [Mapping], attachedAt: UInt64, views: [any RuntimeProcess]) {
      self.mappings = mappings
      self.attachedAt = attachedAt
      self.views = views
      self.lastUse = attachedAt
    }
  }

  private var processes: [Int32: Attached] = [:]
  /// Bounds the processes remembered; the least recently used go first.
  private let capacity: Int
  static let reattachNanos: UInt64 = 2_000_000_000
  static let refreshNanos: UInt64 = 250_000_000

  public init(runtimes: [any Runtime], capacity: Int = 4096) {
    self.runtimes = runtimes
    self.capacity = max(capacity, 1)
  }

  /// The runtimes of process `maps.pid`; `now` is monotonic nanoseconds.
  public func runtimes(for maps: ProcessMaps, now: UInt64) -> [any RuntimeProcess] {
    guard !runtimes.isEmpty else { return [] }
    if let attached = processes[maps.pid] {
      let stale =
        !Self.same(attached.mappings, maps.mappings)
        || (attached.views.count < runtimes.count
          && now &- attached.attachedAt >= Self.reattachNanos)
      if !stale {
        attached.lastUse = now
        if now &- attached.refreshedAt >= Self.refreshNanos {
          attached.refreshedAt = now
          for view in attached.views { view.refresh() }
        }
        return attached.views
      }
    }
    let views = runtimes.compactMap { $0.attach(pid: maps.pid, maps: maps) }
    if processes[maps.pid] == nil, processes.count >= capacity,
      let oldest = processes.min(by: { $0.value.lastUse < $1.value.lastUse })
    {
      processes.removeValue(forKey: oldest.key)
    }
    let attached = Attached(mappings: maps.mappings, attachedAt: now, views: views)
    attached.refreshedAt = now
    processes[maps.pid] = attached
    return views
  }

  /// Names `address` (a lookup address) through the runtime that owns it, if any; refreshes that
  /// runtime first so that code a JIT wrote since the last refresh is found.
  public func symbolize(
    address: UInt64, mapping: Mapping?, maps: ProcessMaps, now: UInt64
  ) -> (owner: String, symbol: RuntimeSymbol?)? {
    for view in runtimes(for: maps, now: now) where view.owns(pc: address, mapping: mapping) {
      return (view.runtimeName, view.symbolize(address: address, mapping: mapping))
    }
    return nil
  }

  /// What each tracked process's runtimes could not use (see `RuntimeProcess.problems`).
  public var problems: [Int32: [String]] {
    processes.compactMapValues { attached in
      let problems = attached.views.compactMap(\.problems)
      return problems.isEmpty ? nil : problems
    }
  }

  /// The same snapshot shares its array storage: compare that first, and the elements only when it differs
  /// (a comparison of every mapping's path per sample would cost more than the unwind).
  private static func same(_ left: [Mapping], _ right: [Mapping]) -> Bool {
    guard left.count == right.count else { return false }
    let sharesStorage = left.withUnsafeBufferPointer { leftBuffer in
      right.withUnsafeBufferPointer { $0.baseAddress == leftBuffer.baseAddress }
    }
    return sharesStorage || left == right
  }

  /// Forgets an exited process.
  public func forget(pid: Int32) { processes.removeValue(forKey: pid) }

  public var trackedProcesses: Int { processes.count }
}
