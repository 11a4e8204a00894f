import FlamespanRuntimes
import Testing

@Suite struct PerfMapParsingTests {
  static func parse(_ line: String) -> PerfMapLine.Parsed { PerfMapLine.parse(Array(line.utf8)) }

  static func entry(_ line: String) -> (start: UInt64, size: UInt64, name: String)? {
    let bytes = Array(line.utf8)
    guard case .entry(let start, let size, let name) = PerfMapLine.parse(bytes) else { return nil }
    return (start, size, String(decoding: bytes[name], as: UTF8.self))
  }

  @Test func readsHexWithOrWithoutPrefixAndNamesWithSpaces() throws {
    let plain = try #require(Self.entry("7fbd4e7c5b80 388 JS:*burnSlow /tmp/app.js:1:18"))
    #expect(plain.start == 0x7fbd_4e7c_5b80)
    #expect(plain.size == 0x388)
    #expect(plain.name == "JS:*burnSlow /tmp/app.js:1:18")
    let java = try #require(
      Self.entry("0x00007f2d1d4a3a00 0x0000000000000140 Lcom/example/Foo;::bar  \r"))
    #expect(java.start == 0x7f2d_1d4a_3a00)
    #expect(java.size == 0x140)
    #expect(java.name == "Lcom/example/Foo;::bar")
    // As JDK 17's -XX:+DumpPerfMapAtExit writes it (a real line), the signature kept whole.
    let hotspot = try #require(
      Self.entry("0x00007f49e4f220a0 0x0000000000000438 double Hot.burn(int, java.lang.Object)"))
    #expect(hotspot.start == 0x7f49_e4f2_20a0)
    #expect(hotspot.size == 0x438)
    #expect(hotspot.name == "double Hot.burn(int, java.lang.Object)")
    let tabs = try #require(Self.entry("\tABCDEF\t0X10\tvoid Foo::bar(int, char)"))
    #expect(tabs.start == 0xabcdef)
    #expect(tabs.size == 0x10)
    #expect(tabs.name == "void Foo::bar(int, char)")
    // Sixteen digits, leading zeros beyond them, still fit.
    let wide = try #require(Self.entry("0000" + "fffffffffffffff0" + " f top"))
    #expect(wide.start == 0xffff_ffff_ffff_fff0)
  }

  @Test func refusesBadLines() {
    #expect(Self.parse("") == .blank)
    #expect(Self.parse("   \t ") == .blank)
    for line in [
      "xyz 10 name",  // non-hex start
      "1000 1g name",  // non-hex size
      "1000 10",  // no name
      "1000 10   ",  // blank name
      "1000",  // one field
      "0x 10 name",  // prefix without digits
      "1000 0 name",  // size 0
      "ffffffffffffff00 200 name",  // start + size overflows
      "1000 80000000 name",  // 2 GiB of code: absurd
      "10000000000000000 10 name",  // 17 significant digits
      "1000 -10 name",
    ] {
      #expect(Self.parse(line) == .bad, "\(line)")
    }
  }

  @Test func countsBadLinesAndKeepsTheGoodOnes() {
    let map = PerfMap(path: "/nonexistent")
    map.consume(
      Array(
        """
        1000 10 first
        zzzz 10 broken
        2000 0 empty

        3000 20 third one

        """.utf8))
    #expect(map.entryCount == 2)
    #expect(map.badLines == 2)
    #expect(map.name(at: 0x1000) == "first")
    #expect(map.name(at: 0x100f) == "first")
    #expect(map.name(at: 0x1010) == nil)
    #expect(map.name(at: 0x301f) == "third one")
    #expect(map.name(at: 0x2000) == nil)
    #expect(map.name(at: 0) == nil)
  }

  @Test func capsEntriesAndCountsTheRest() {
    let map = PerfMap(path: "/nonexistent", maxEntries: 3)
    map.consume(
      Array((0..<5).map { "\(String(0x1000 * ($0 + 1), radix: 16)) 10 f\($0)\n" }.joined().utf8))
    #expect(map.entryCount == 3)
    #expect(map.droppedEntries == 2)
    #expect(map.name(at: 0x3000) == "f2")
    #expect(map.name(at: 0x4000) == nil)
  }
}
