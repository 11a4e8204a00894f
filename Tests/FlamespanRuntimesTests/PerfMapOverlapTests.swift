import FlamespanRuntimes
import Testing

@Suite struct PerfMapOverlapTests {
  static func map(_ lines: [String]) -> PerfMap {
    let map = PerfMap(path: "/nonexistent")
    map.consume(Array(lines.map { $0 + "\n" }.joined().utf8))
    return map
  }

  @Test func theLaterEntryWinsWhereRangesOverlap() {
    let map = Self.map(["1000 100 old", "1080 10 inner", "1000 40 newer-head"])
    #expect(map.name(at: 0x1000) == "newer-head")
    #expect(map.name(at: 0x103f) == "newer-head")
    #expect(map.name(at: 0x1040) == "old")
    #expect(map.name(at: 0x1085) == "inner")
    #expect(map.name(at: 0x1090) == "old")
    #expect(map.name(at: 0x10ff) == "old")
    #expect(map.name(at: 0x1100) == nil)
    #expect(map.range(at: 0x1090) == 0x1000..<0x1100)
  }

  @Test func aLaterAppendSupersedesWhatWasAlreadyLookedUp() {
    let map = Self.map(["1000 100 first", "2000 100 second"])
    #expect(map.name(at: 0x1050) == "first")
    map.consume(Array("1040 1000 reused\n".utf8))
    #expect(map.name(at: 0x1000) == "first")
    #expect(map.name(at: 0x1050) == "reused")
    #expect(map.name(at: 0x2000) == "reused")
    #expect(map.name(at: 0x203f) == "reused")
    #expect(map.name(at: 0x2040) == "second")
    #expect(map.name(at: 0x2100) == nil)
  }

  /// The index against the plain rule (the last entry covering an address names it), over random
  /// overlapping entries added in random batches, with lookups between the batches.
  @Test func agreesWithALinearScanOverRandomOverlaps() {
    var generator = SplitMix(seed: 0x5eed)
    for round in 0..<40 {
      let map = PerfMap(path: "/nonexistent")
      var entries: [(start: UInt64, end: UInt64, name: String)] = []
      for batch in 0..<4 {
        var text = ""
        for index in 0..<(1 + Int(generator.next() % 30)) {
          let start = 0x1000 + generator.next() % 0x400
          let size = 1 + generator.next() % 0x80
          let name = "r\(round)b\(batch)e\(index)"
          entries.append((start, start + size, name))
          text += "\(String(start, radix: 16)) \(String(size, radix: 16)) \(name)\n"
        }
        map.consume(Array(text.utf8))
        for address in stride(from: UInt64(0xff0), to: 0x14a0, by: 3) {
          let expected = entries.last(where: { address >= $0.start && address < $0.end })?.name
          #expect(map.name(at: address) == expected, "round \(round) address \(address)")
        }
      }
    }
  }
}

/// A small seeded generator, so that random tests repeat exactly.
struct SplitMix {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9e37_79b9_7f4a_7c15
    var z = state
    z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
    z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
    return z ^ (z >> 31)
  }
}
