import FlamespanTestSupport
import Foundation
import Testing

@testable import FlamespanSymbolizer

/// The symbolizer's cache bounded by the bytes its parsed files hold, not only by their number.
@Suite struct CacheBudgetTests {
  static let libc = systemLibc
  static let libm = "/lib/x86_64-linux-gnu/libm.so.6"

  final class Sized {
    var bytes: Int
    init(_ bytes: Int) { self.bytes = bytes }
  }

  @Test("eviction by cost drops the least recently used entries first, down to the budget")
  func lruByCost() {
    var cache = LRUCache<String, Sized>(capacity: 10)
    cache.insert(Sized(10), for: "a")
    cache.insert(Sized(20), for: "b")
    cache.insert(Sized(30), for: "c")
    _ = cache.value(for: "a")  // now b is the oldest, then c, then a
    #expect(cache.totalCost(\.bytes) == 60)
    let evicted = cache.evict(toCost: 39, keepingNewest: true, cost: \.bytes)
    // b (20) then c (30) go; a alone (10) fits.
    #expect(evicted == 2)
    #expect(cache.value(for: "b") == nil)
    #expect(cache.value(for: "c") == nil)
    #expect(cache.value(for: "a")?.bytes == 10)
    #expect(cache.totalCost(\.bytes) == 10)
  }

  @Test(
    "a cost measured at eviction time: entries that grew after insertion count at their new size")
  func costGrowsAfterInsertion() {
    var cache = LRUCache<String, Sized>(capacity: 10)
    let grows = Sized(1)
    cache.insert(grows, for: "old")
    cache.insert(Sized(1), for: "new")
    #expect(cache.evict(toCost: 10, keepingNewest: true, cost: \.bytes) == 0)
    grows.bytes = 100
    #expect(cache.evict(toCost: 10, keepingNewest: true, cost: \.bytes) == 1)
    #expect(cache.value(for: "old") == nil)
    #expect(cache.count == 1)
  }

  @Test("the newest entry stays over budget only when asked to")
  func keepingNewest() {
    var cache = LRUCache<String, Sized>(capacity: 10)
    cache.insert(Sized(5), for: "small")
    cache.insert(Sized(500), for: "huge")
    #expect(cache.evict(toCost: 100, keepingNewest: true, cost: \.bytes) == 1)
    #expect(cache.value(for: "huge") != nil)
    #expect(cache.evict(toCost: 100, keepingNewest: false, cost: \.bytes) == 1)
    #expect(cache.count == 0)
    #expect(cache.totalCost(\.bytes) == 0)
  }

  @Test("a parsed file's estimate covers its symbol entries", .requires(.systemLibc, .tool("nm")))
  func estimateCoversSymbols() throws {
    let file = try ObjectFile(
      path: Self.libc, configuration: DwflConfiguration(debugDirectories: []))
    let exported = try functionSymbols(of: Self.libc, dynamic: true)
    #expect(exported.count > 100)
    let lowerBound = exported.count * MemoryLayout<SymbolTable.Entry>.stride
    #expect(file.estimatedBytes >= lowerBound)
    #expect(file.estimatedBytes < 64 << 20)
  }

  @Test(
    "names read on lookup: the frames name the function, and the estimate counts the names read",
    .requires(.systemLibc, .tool("nm")))
  func namesReadOnLookup() throws {
    let file = try ObjectFile(
      path: Self.libc, configuration: DwflConfiguration(debugDirectories: []))
    let probe = try #require(
      try functionSymbols(of: Self.libc, dynamic: true).first {
        $0.name.split(separator: "@").first == "qsort"
      })
    let before = file.estimatedBytes
    let frames = file.resolve(virtualAddress: probe.address + probe.size / 2).frames
    #expect(frames.map(\.function) == ["qsort"])
    #expect(file.estimatedBytes > before)
  }

  @Test("using a file's DWARF grows its estimate", .requires(.tool("cc")))
  func estimateGrowsWithDwarf() throws {
    let cc = "cc"
    let directory = try TestEnvironment.temporaryDirectory("sym")
    let binary = directory.appendingPathComponent("inline_chains").path
    _ = try Run.checked(
      [cc] + [
        "-O2", "-g", fixturesDirectory.appendingPathComponent("inline_chains.c").path, "-o", binary,
      ])
    let probe = try #require(try functionSymbols(of: binary).first { $0.name == "classify" })
    let file = try ObjectFile(path: binary, configuration: DwflConfiguration(debugDirectories: []))
    let before = file.estimatedBytes
    #expect(!file.resolve(virtualAddress: probe.address).frames.isEmpty)
    #expect(file.estimatedBytes > before)
  }

  @Test(
    "a byte budget evicts parsed files between lookups and trims to nothing between batches",
    .requires(.systemLibc, .file(Self.libm)))
  func symbolizerByteBudget() throws {
    let unbounded = Symbolizer(options: .init(maxCachedFiles: 8))
    _ = try unbounded.symbolize(binary: Self.libc, virtualAddresses: [0x30000])
    let libcBytes = unbounded.statistics.cachedBytes
    _ = try unbounded.symbolize(binary: Self.libm, virtualAddresses: [0x10000])
    let bothBytes = unbounded.statistics.cachedBytes
    #expect(libcBytes > 0)
    #expect(bothBytes > libcBytes)
    #expect(unbounded.statistics.evictions == 0)

    // Room for libc but not for libc and libm together. Halfway between, not one byte short of both: the
    // estimates come from array capacities and once came out a little smaller in the second symbolizer
    // (under a full parallel test run), which then kept both.
    let budget = libcBytes + (bothBytes - libcBytes) / 2
    let bounded = Symbolizer(options: .init(maxCachedFiles: 8, maxCachedBytes: budget))
    _ = try bounded.symbolize(binary: Self.libc, virtualAddresses: [0x30000])
    _ = try bounded.symbolize(binary: Self.libm, virtualAddresses: [0x10000])
    var statistics = bounded.statistics
    #expect(statistics.evictions == 1)
    #expect(statistics.cachedBytes < bothBytes)
    _ = try bounded.symbolize(binary: Self.libc, virtualAddresses: [0x30000])
    statistics = bounded.statistics
    #expect(statistics.filesParsed == 3)
    #expect(statistics.cacheHits == 0)

    bounded.trimToMemoryBudget()
    #expect(bounded.statistics.cachedBytes <= budget)
    let tiny = Symbolizer(options: .init(maxCachedFiles: 8, maxCachedBytes: 1))
    let resolved = try tiny.symbolize(binary: Self.libc, virtualAddresses: [0x30000])
    // Over budget on its own, the file is still used for the lookup that parsed it.
    #expect(tiny.statistics.cachedBytes > 1)
    #expect(resolved.count == 1)
    tiny.trimToMemoryBudget()
    #expect(tiny.statistics.cachedBytes == 0)
    #expect(tiny.statistics.evictions == 1)
  }
}
