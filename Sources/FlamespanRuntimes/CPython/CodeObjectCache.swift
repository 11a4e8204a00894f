/// The code objects one process's frames were named from, keyed by (address, stamp), least recently used
/// first out. Code objects live as long as their functions, so a few thousand entries hold a service's
/// hot code; the bound keeps a process that generates code (exec, lambdas in a loop) from growing it.
struct CodeObjectCache {
  struct Key: Hashable {
    var address: UInt64
    var stamp: UInt32
  }

  let capacity: Int
  private var entries: [Key: (code: CPythonCodeObject, lastUse: UInt64)] = [:]
  private var clock: UInt64 = 0

  init(capacity: Int) { self.capacity = max(capacity, 1) }

  var count: Int { entries.count }

  mutating func lookup(_ key: Key) -> CPythonCodeObject? {
    guard let entry = entries[key] else { return nil }
    clock += 1
    entries[key] = (entry.code, clock)
    return entry.code
  }

  mutating func insert(_ code: CPythonCodeObject, for key: Key) {
    clock += 1
    entries[key] = (code, clock)
    guard entries.count > capacity else { return }
    // Evict the least recently used quarter at once, so that eviction costs O(1) per insert overall.
    let victims = entries.sorted { $0.value.lastUse < $1.value.lastUse }.prefix(
      max(entries.count - capacity * 3 / 4, 1))
    for victim in victims { entries[victim.key] = nil }
  }

  mutating func removeAll() { entries.removeAll() }
}
