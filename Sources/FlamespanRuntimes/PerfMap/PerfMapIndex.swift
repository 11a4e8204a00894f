/// The entries of one perf map and the address lookup over them.
///
/// Entries are stored in the order they were read (their sequence number is their index), names packed
/// in one byte buffer so that millions of entries are not millions of String allocations. Lookups go
/// through `segments`: disjoint address ranges sorted by start, each naming the entry visible there,
/// where a later entry covers an earlier one it overlaps (a JIT that reuses memory writes the new code's
/// line after the old one). Appends do not touch `segments`; the first lookup after them lays the new
/// entries over the old segments in one linear merge, so a refresh costs O(n + k log k), not a re-sort.
struct PerfMapIndex {
  struct Entry {
    var start: UInt64
    /// One past the last byte.
    var end: UInt64
    var nameOffset: Int
    var nameLength: Int32
  }

  struct Segment: Equatable {
    var start: UInt64
    var end: UInt64
    var entry: Int32
  }

  let maxEntries: Int
  private(set) var entries: [Entry] = []
  private var nameBytes: [UInt8] = []
  private var segments: [Segment] = []
  /// The first entry not yet laid into `segments`.
  private var pendingFrom = 0
  /// Entries refused because the cap was reached.
  private(set) var droppedEntries = 0

  init(maxEntries: Int) {
    self.maxEntries = max(0, maxEntries)
  }

  var count: Int { entries.count }

  mutating func removeAll() {
    entries.removeAll()
    nameBytes.removeAll()
    segments.removeAll()
    pendingFrom = 0
    droppedEntries = 0
  }

  /// Adds an entry. Past the cap it is counted and dropped: memory stays bounded, at the price of not
  /// naming code the JIT wrote after the first `maxEntries` lines.
  mutating func append(start: UInt64, size: UInt64, name: UnsafeBufferPointer<UInt8>) {
    guard entries.count < maxEntries, entries.count < Int(Int32.max) else {
      droppedEntries += 1
      return
    }
    entries.append(
      Entry(
        start: start, end: start + size, nameOffset: nameBytes.count,
        nameLength: Int32(name.count)))
    nameBytes.append(contentsOf: name)
  }

  func name(ofEntry index: Int) -> String {
    let entry = entries[index]
    return nameBytes.withUnsafeBufferPointer { buffer in
      String(
        decoding: UnsafeBufferPointer(
          rebasing: buffer[entry.nameOffset..<entry.nameOffset + Int(entry.nameLength)]),
        as: UTF8.self)
    }
  }

  /// The index of the entry visible at `address`, or nil when none covers it. O(log n) once the
  /// pending entries are laid in.
  mutating func entryIndex(at address: UInt64) -> Int? {
    layPending()
    var low = 0
    var high = segments.count
    // The first segment starting after `address`; only the one before it can contain it.
    while low < high {
      let middle = (low + high) / 2
      if segments[middle].start <= address { low = middle + 1 } else { high = middle }
    }
    guard low > 0 else { return nil }
    let candidate = segments[low - 1]
    return address < candidate.end ? Int(candidate.entry) : nil
  }

  /// The visible segments, for tests of the overlap rule.
  mutating func visibleSegments() -> [Segment] {
    layPending()
    return segments
  }

  private mutating func layPending() {
    guard pendingFrom < entries.count else { return }
    let fresh = flatten(pendingFrom..<entries.count)
    segments = Self.overlay(segments, with: fresh)
    pendingFrom = entries.count
  }

  /// The disjoint segments of entries in `range` alone, later ones winning: each half flattened, then
  /// the later half laid over the earlier one.
  private func flatten(_ range: Range<Int>) -> [Segment] {
    if range.count == 1 {
      let entry = entries[range.lowerBound]
      return [Segment(start: entry.start, end: entry.end, entry: Int32(range.lowerBound))]
    }
    if range.isEmpty { return [] }
    // A JIT often writes its lines in address order without overlap: then they are the segments as is.
    var ordered = true
    var previousEnd: UInt64 = 0
    for index in range {
      let entry = entries[index]
      if entry.start < previousEnd {
        ordered = false
        break
      }
      previousEnd = entry.end
    }
    if ordered {
      return range.map { Segment(start: entries[$0].start, end: entries[$0].end, entry: Int32($0)) }
    }
    let middle = range.lowerBound + range.count / 2
    return Self.overlay(
      flatten(range.lowerBound..<middle), with: flatten(middle..<range.upperBound))
  }

  /// `base` with `top` laid over it: both sorted and disjoint; where they overlap, `top` wins.
  static func overlay(_ base: [Segment], with top: [Segment]) -> [Segment] {
    if top.isEmpty { return base }
    if base.isEmpty { return top }
    // What of `base` no segment of `top` covers.
    var remainder: [Segment] = []
    remainder.reserveCapacity(base.count + 1)
    var first = 0
    for segment in base {
      var start = segment.start
      // `top` ends are increasing, and base starts too, so `first` only moves forward.
      while first < top.count, top[first].end <= start { first += 1 }
      var index = first
      while start < segment.end {
        guard index < top.count, top[index].start < segment.end else {
          remainder.append(Segment(start: start, end: segment.end, entry: segment.entry))
          break
        }
        if top[index].start > start {
          remainder.append(Segment(start: start, end: top[index].start, entry: segment.entry))
        }
        start = max(start, top[index].end)
        index += 1
      }
    }
    // Merge two sorted lists whose ranges do not overlap each other.
    var merged: [Segment] = []
    merged.reserveCapacity(remainder.count + top.count)
    var left = 0
    var right = 0
    while left < remainder.count || right < top.count {
      if right == top.count || (left < remainder.count && remainder[left].start < top[right].start)
      {
        merged.append(remainder[left])
        left += 1
      } else {
        merged.append(top[right])
        right += 1
      }
    }
    return merged
  }
}
