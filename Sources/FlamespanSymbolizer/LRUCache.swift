/// A small least-recently-used map. Entries are few (tens of files), so recency is a counter per entry and
/// eviction scans for the oldest: simpler than a linked list and just as fast at this size.
struct LRUCache<Key: Hashable, Value> {
  private var entries: [Key: (value: Value, lastUse: UInt64)] = [:]
  private var clock: UInt64 = 0
  let capacity: Int

  init(capacity: Int) { self.capacity = max(1, capacity) }

  var count: Int { entries.count }

  mutating func value(for key: Key) -> Value? {
    guard let entry = entries[key] else { return nil }
    clock += 1
    entries[key] = (entry.value, clock)
    return entry.value
  }

  /// Inserts and returns how many entries were evicted to make room.
  @discardableResult
  mutating func insert(_ value: Value, for key: Key) -> Int {
    clock += 1
    entries[key] = (value, clock)
    var evicted = 0
    while entries.count > capacity,
      let oldest = entries.min(by: { $0.value.lastUse < $1.value.lastUse })
    {
      entries.removeValue(forKey: oldest.key)
      evicted += 1
    }
    return evicted
  }

  mutating func removeAll() { entries.removeAll() }
}
