import FlamespanRuntimes
import Testing

/// Hand-assembled tables in both supported layouts. Only Go 1.19 is installed here, so this is what
/// checks the Go 1.20+ record (startLine before funcID) field by field.
@Suite struct GoSyntheticTableTests {
  /// Two functions at text 0x1000: main.a (0x20 bytes, a 0x18-byte frame between 0x1004 and 0x101f,
  /// lines 10 and 11) and main.b (0x10 bytes, TOPFRAME, line 20), both in /src/a.go.
  static func table(magic: UInt32) -> [UInt8] {
    let is120 = magic == 0xffff_fff1
    var out: [UInt8] = []
    func u32(_ value: UInt32) {
      for index in 0..<4 { out.append(UInt8(truncatingIfNeeded: value >> (8 * index))) }
    }
    func u64(_ value: UInt64) {
      for index in 0..<8 { out.append(UInt8(truncatingIfNeeded: value >> (8 * index))) }
    }
    let names: [UInt8] = Array("main.a\0main.b\0".utf8)
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

    let headerSize = 8 + 8 * 8
    let funcnameOffset = headerSize
    let cuOffset = funcnameOffset + names.count
    let filetabOffset = cuOffset + 4
    let pctabOffset = filetabOffset + files.count
    let pclnOffset = pctabOffset + pctab.count
    let recordSize = is120 ? 44 : 40
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
    for (entry, record) in [(0, functab), (0x20, functab + recordSize), (0x30, 0)] {
      u32(UInt32(entry))
      u32(UInt32(record))
    }
    for (entry, name, pcsp, file, pcln, flag) in [
      (UInt32(0), UInt32(0), pcspA, pcfile, pclnA, UInt8(0)), (0x20, 7, pcspB, pcfileB, pclnB, 1),
    ] {
      for value in [entry, name, 0, 0, pcsp, file, pcln, 0, 0] { u32(value) }
      if is120 { u32(9) }
      out += [0, flag, 0, 0]
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
