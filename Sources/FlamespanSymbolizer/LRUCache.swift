/// A small least-recently-used map, bounded by entry count and optionally by the summed cost of its entries.
/// Entries are few (tens of files), so recency is a counter per entry and eviction scans for the oldest:
/// simpler than a linked list and just as fast at this size.
///
/// Costs are asked for at eviction time rather than stored at insertion, because a cached value can grow
/// after it is inserted (a parsed file builds its DWARF trees and name caches as addresses are looked up).
struct LRUCache<Key: Hashable, Value> {
  private var entries: [Key: (value: Value, lastUse: UInt64)] = [:]
  private var clock: UInt64 = 0
  let capacity: Int

  init(capacity: Int) { self.capacity = max(1, capacity) }

  var count: Int { entries.count }

  /// The cached values, in no particular order, without touching their recency.
  var values: [Value] { entries.values.map(\.value) }

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
    while entries.count > capacity, evictOldest() {
      evicted += 1
    }
    return evicted
  }

  /// Sum of `cost` over the entries.
  func totalCost(_ cost: (Value) -> Int) -> Int {
    entries.values.reduce(0) { $0 + cost($1.value) }
  }

  /// Drops least recently used entries until the summed cost is at most `budget`, and returns how many
  /// were dropped. With `keepingNewest` the most recently used entry stays even when it alone exceeds the
  /// budget: it is the one a caller is about to use.
  @discardableResult
  mutating func evict(toCost budget: Int, keepingNewest: Bool, cost: (Value) -> Int) -> Int {
    var total = totalCost(cost)
    var evicted = 0
    while total > budget, entries.count > (keepingNewest ? 1 : 0),
      let oldest = entries.min(by: { $0.value.lastUse < $1.value.lastUse })
    {
      total -= cost(oldest.value.value)
      entries.removeValue(forKey: oldest.key)
      evicted += 1
    }
    return evicted
  }

  mutating func removeAll() { entries.removeAll() }

  private mutating func evictOldest() -> Bool {
    guard let oldest = entries.min(by: { $0.value.lastUse < $1.value.lastUse }) else {
      return false
    }
    entries.removeValue(forKey: oldest.key)
    return true
  }
}
