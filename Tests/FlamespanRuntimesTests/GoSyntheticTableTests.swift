import FlamespanRuntimes
import Testing

/// Hand-assembled tables in both supported layouts. Only Go 1.19 is installed here, so this is what
/// checks the Go 1.20+ record (startLine before funcID) field by field.
@Suite struct GoSyntheticTableTests {
  /// Two functions at text 0x1000: main.a (0x20 bytes, a 0x18-byte frame between 0x1004 and 0x101f,
  /// lines 10 and 11) and main.b (0x10 bytes, TOPFRAME, line 20), both in /src/a.go.
  ///
  /// With `inline`, main.a also has an inline tree (funcdata 3 at gofunc offset 0, see `inlineTree`)
  /// and pcdata 2 giving inline index -1 for 8 bytes, 1 for 8 bytes (main.inner inlined into
  /// main.outer) and 0 for 0x10 bytes (main.outer inlined into main.a).
  static func table(magic: UInt32, inline: Bool = false) -> [UInt8] {
    let is120 = magic == 0xffff_fff1
    var out: [UInt8] = []
    func u32(_ value: UInt32) {
      for index in 0..<4 { out.append(UInt8(truncatingIfNeeded: value >> (8 * index))) }
    }
    func u64(_ value: UInt64) {
      for index in 0..<8 { out.append(UInt8(truncatingIfNeeded: value >> (8 * index))) }
    }
    let names: [UInt8] = Array("main.a\0main.b\0main.outer\0main.inner\0".utf8)
    let files: [UInt8] = Array("/src/a.go\0".utf8)
    // pcvalue tables, with a leading 0 byte so that no table sits at offset 0 ("none").
    var pctab: [UInt8] = [0]
    let pcspA = UInt32(pctab.count)
    pctab += [2, 4, 0x30, 0x1b, 0x2f, 1, 0]  // 0 for 4 bytes, +0x18 for 0x1b, back to 0 for 1
    let pcfile = UInt32(pctab.count)
    pctab += [2, 0x20, 0]  // file index 0 throughout
    let pcfileB = UInt32(pctab.count)
    pctab += [2, 0x10, 0]
    let pclnA = UInt32(pctab.count)
    pctab += [22, 0x10, 2, 0x10, 0]  // line 10, then 11
    let pcspB = UInt32(pctab.count)
    pctab += [2, 0x10, 0]
    let pclnB = UInt32(pctab.count)
    pctab += [42, 0x10, 0]  // line 20
    let inlineIndex = UInt32(pctab.count)
    pctab += [0, 8, 4, 8, 1, 0x10, 0]  // -1 for 8 bytes, 1 for 8, 0 for 0x10

    let headerSize = 8 + 8 * 8
    let funcnameOffset = headerSize
    let cuOffset = funcnameOffset + names.count
    let filetabOffset = cuOffset + 4
    let pctabOffset = filetabOffset + files.count
    let pclnOffset = pctabOffset + pctab.count
    // main.a's record is followed by 3 pcdata offsets and 4 funcdata offsets when inline.
    let recordSize = is120 ? 44 : 40
    let recordSizeA = recordSize + (inline ? 7 * 4 : 0)
    u32(magic)
    out += [0, 0, 1, 8]
    for word in [2, 1, 0x1000, funcnameOffset, cuOffset, filetabOffset, pctabOffset, pclnOffset] {
      u64(UInt64(word))
    }
    out += names
    u32(0)  // cu table: the unit's file 0 is filetab offset 0
    out += files
    out += pctab
    let functab = 3 * 8
    for (entry, record) in [(0, functab), (0x20, functab + recordSizeA), (0x30, 0)] {
      u32(UInt32(entry))
      u32(UInt32(record))
    }
    for (entry, name, pcsp, file, pcln, flag) in [
      (UInt32(0), UInt32(0), pcspA, pcfile, pclnA, UInt8(0)), (0x20, 7, pcspB, pcfileB, pclnB, 1),
    ] {
      let hasTree = inline && entry == 0
      for value in [entry, name, 0, 0, pcsp, file, pcln, hasTree ? 3 : 0, 0] { u32(value) }
      if is120 { u32(9) }
      out += [0, flag, 0, hasTree ? 4 : 0]
      if hasTree {
        for value in [0, 0, inlineIndex, UInt32.max, UInt32.max, UInt32.max, 0] { u32(value) }
      }
    }
    return out
  }

  @Test(arguments: [UInt32(0xffff_fff0), 0xffff_fff1])
  func decodesBothLayouts(magic: UInt32) throws {
    let table = try GoPCLNTable(bytes: Self.table(magic: magic))
    #expect(table.version == (magic == 0xffff_fff1 ? .go120 : .go118))
    #expect(table.textRange == 0x1000..<0x1030)
    let a = try #require(try table.function(at: 0x1005))
    #expect(a.name == "main.a" && a.entry == 0x1000 && a.end == 0x1020 && !a.isTopFrame)
    #expect(a.startLine == (magic == 0xffff_fff1 ? 9 : nil))
    #expect(try table.spDelta(of: a, at: 0x1003) == 0)
    #expect(try table.spDelta(of: a, at: 0x1004) == 0x18)
    #expect(try table.spDelta(of: a, at: 0x101e) == 0x18)
    #expect(try table.spDelta(of: a, at: 0x101f) == 0)
    #expect(try table.frameAllocationPC(of: a) == 0x1004)
    #expect(try table.sourcePosition(of: a, at: 0x100f) == ("/src/a.go", 10))
    #expect(try table.sourcePosition(of: a, at: 0x1010) == ("/src/a.go", 11))
    let b = try #require(try table.function(at: 0x102f))
    #expect(b.name == "main.b" && b.isTopFrame)
    #expect(try table.sourcePosition(of: b, at: 0x1020) == ("/src/a.go", 20))
    #expect(try table.frameAllocationPC(of: b) == nil)
    #expect(try table.function(at: 0x1030) == nil)
    #expect(try table.function(at: 0xfff) == nil)
  }

  /// The inline tree at gofunc for `table(magic:inline: true)`: entry 0 is main.outer (called at line
  /// 100 of main.a, parentPc 0), entry 1 main.inner (called at line 200 of main.outer, parentPc 0x10).
  /// Go 1.19 entries are 20 bytes with the call site recorded; Go 1.20+ entries are 16 bytes.
  static func inlineTree(magic: UInt32) -> [UInt8] {
    var out: [UInt8] = []
    func u32(_ value: Int32) {
      for index in 0..<4 { out.append(UInt8(truncatingIfNeeded: value >> (8 * Int32(index)))) }
    }
    let outer: Int32 = 14  // name offsets in funcnametab
    let inner: Int32 = 25
    for (parent, line, name, parentPC) in [(-1, 100, outer, 0), (0, 200, inner, 0x10)] {
      if magic == 0xffff_fff1 {
        out += [0, 0, 0, 0]  // funcID, padding
        u32(name)
        u32(Int32(parentPC))
        u32(1)  // startLine
      } else {
        out += [UInt8(truncatingIfNeeded: parent), UInt8(truncatingIfNeeded: parent >> 8), 0, 0]
        u32(0)  // file index 0 of the unit
        u32(Int32(line))
        u32(name)
        u32(Int32(parentPC))
      }
    }
    return out
  }

  /// Both entry layouts, with the rule for each: Go 1.19 takes the recorded call site, Go 1.20+ the
  /// position of the instruction at parentPc (here lines 11 and 10 of main.a).
  @Test(arguments: [UInt32(0xffff_fff0), 0xffff_fff1])
  func decodesInlineTrees(magic: UInt32) throws {
    let table = try GoPCLNTable(bytes: Self.table(magic: magic, inline: true))
    let funcData = GoFuncData(address: 0x9000, bytes: Self.inlineTree(magic: magic))
    let a = try #require(try table.function(at: 0x1000))
    let b = try #require(try table.function(at: 0x1020))
    #expect(b.name == "main.b")
    func chain(_ pc: UInt64, _ data: GoFuncData? = nil) throws -> [String] {
      try table.frames(of: a, at: pc, funcData: data ?? funcData).map {
        "\($0.function) \($0.file ?? "?"):\($0.line)"
      }
    }
    let is120 = magic == 0xffff_fff1
    #expect(try chain(0x1001) == ["main.a /src/a.go:10"])
    #expect(
      try chain(0x1008)
        == [
          "main.inner /src/a.go:10", "main.outer /src/a.go:\(is120 ? 11 : 200)",
          "main.a /src/a.go:\(is120 ? 10 : 100)",
        ])
    #expect(
      try chain(0x1012)
        == ["main.outer /src/a.go:11", "main.a /src/a.go:\(is120 ? 10 : 100)"])
    #expect(try table.frames(of: a, at: 0x1008, funcData: nil).map(\.function) == ["main.a"])
    #expect(try table.frames(of: b, at: 0x1020, funcData: funcData).map(\.function) == ["main.b"])
    // A tree cut short is an error, not a guess.
    let cut = GoFuncData(address: 0x9000, bytes: Array(Self.inlineTree(magic: magic).prefix(20)))
    #expect(throws: GoPCLNError.self) { try chain(0x1008, cut) }
  }

  @Test func aTableThatNeverEndsIsAnErrorNotALoop() throws {
    var bytes = Self.table(magic: 0xffff_fff0)
    // Turn main.a's pcsp runs into zero-length ones.
    let start = try #require(bytes.indices.first { bytes[$0...].starts(with: [2, 4, 0x30, 0x1b]) })
    bytes[start + 1] = 0
    let table = try GoPCLNTable(bytes: bytes)
    let a = try #require(try table.function(at: 0x1000))
    #expect(throws: GoPCLNError.self) { try table.spDelta(of: a, at: 0x1008) }
  }
}
