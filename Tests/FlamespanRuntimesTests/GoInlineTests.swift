import FlamespanELF
import FlamespanModel
import FlamespanProcess
import FlamespanTestSupport
import Foundation
import Testing

@testable import FlamespanRuntimes

/// Inlined calls named from Go's inline tree (`.gopclntab` pcdata 2 and funcdata 3 in `go:func.*`), so
/// a stripped binary gives the chain DWARF gives for the unstripped one.
@Suite struct GoInlineTests {
  /// The fixture's functions with inlined code: nestedInline (two levels), middleFrame (one), main
  /// (time and fmt helpers), hashLoop (sha256).
  static let functions = "^main\\.(nestedInline|middleFrame|hashLoop|main)$"

  static func describe(_ frames: [SourceFrame]) -> String {
    frames.map { "\($0.function) \($0.file ?? "?"):\($0.line)" }.joined(separator: " <- ")
  }

  /// Every instruction of the functions above, symbolized through the plug-in from `build`, against
  /// llvm-symbolizer on the DWARF of the unstripped build (the stripped one has the same code at the
  /// same addresses); and the innermost file:line against `go tool addr2line`.
  @Test(.requires(.tool("go"), .tool("llvm-symbolizer")), arguments: ["plain", "stripped", "pie"])
  func inlineChainsMatchDWARF(build: String) throws {
    let fixture = try GoFixture.shared.get()
    let path = ["plain": fixture.plain, "stripped": fixture.stripped, "pie": fixture.pie][build]!
    let dwarfBinary = build == "pie" ? fixture.pie : fixture.plain
    let base: UInt64 = build == "pie" ? 0x5555_5555_4000 : 0x40_0000
    let process = try #require(GoRuntimeTests.attach(GoRuntime(), path, base: base))
    let addresses = try fixture.disassemble(dwarfBinary, Self.functions).map(\.address)
    #expect(addresses.count > 100)
    let expected = try GoFixture.dwarfChains(dwarfBinary, addresses)
    // `go tool addr2line` does not read PIE binaries (it answers "?"), so their innermost positions
    // are checked against DWARF only.
    let lines = build == "pie" ? nil : try fixture.addr2line(dwarfBinary, addresses)
    var mismatches: [String] = []
    var depths: [Int: Int] = [:]
    for (index, address) in addresses.enumerated() {
      let frames =
        process.symbolize(address: address - 0x40_0000 + base, mapping: nil)?.frames ?? []
      depths[frames.count, default: 0] += 1
      let want = expected[index].map { "\($0.function) \($0.file):\($0.line)" }
        .joined(separator: " <- ")
      if Self.describe(frames) != want {
        mismatches.append("0x\(String(address, radix: 16)): \(Self.describe(frames)) vs \(want)")
      }
      if let own = lines?[index], frames.first?.file != own.file || frames.first?.line != own.line {
        mismatches.append("0x\(String(address, radix: 16)): innermost vs addr2line \(own)")
      }
    }
    let clean = mismatches.isEmpty
    #expect(clean, "\(mismatches.count) mismatches: \(mismatches.prefix(8))")
    // The fixture's two-level chain is there, and so are one-level ones.
    #expect(depths[3, default: 0] > 0 && depths[2, default: 0] > 0, "\(depths)")
  }

  /// The two-level chain checked by hand against spin.go: `x*x + 7` (line 61) in innerInline, called
  /// at line 65 in outerInline, called at line 72 in nestedInline.
  @Test(.requires(.tool("go"))) func nestedChainIsHandChecked() throws {
    let fixture = try GoFixture.shared.get()
    let body = try fixture.disassemble(fixture.plain, "^main\\.nestedInline$")
    let multiply = try #require(body.first { $0.instruction.hasPrefix("IMULQ") })
    let process = try #require(GoRuntimeTests.attach(GoRuntime(), fixture.stripped))
    let frames = try #require(process.symbolize(address: multiply.address, mapping: nil)).frames
    #expect(
      frames.map { "\($0.function):\($0.line)" }
        == ["main.innerInline:61", "main.outerInline:65", "main.nestedInline:72"])
    #expect(frames.allSatisfy { $0.file?.hasSuffix("/spin.go") == true })
    let own = try #require(try fixture.addr2line(fixture.plain, [multiply.address]).first)
    #expect(frames.first?.file == own.file && frames.first?.line == own.line)
    // The function's own code has no inlined frames.
    let entry = try #require(body.first)
    #expect(
      process.symbolize(address: entry.address, mapping: nil)?.frames.map(\.function)
        == ["main.nestedInline"])
  }

  /// Go 1.20+ records no call site in its inline entries: the caller's position is that of the
  /// instruction at parentPc. Go 1.19 records both, so over the whole fixture binary the 1.20 rule
  /// must give exactly the recorded call sites.
  @Test(.requires(.tool("go"))) func parentPCRuleMatchesRecordedCallSites() throws {
    let fixture = try GoFixture.shared.get()
    let binary = try GoFixture.loadBinary(fixture.stripped)
    let table = binary.table
    let funcData = try #require(binary.funcData)
    var inlined = 0
    var mismatches: [String] = []
    for pc in stride(from: table.textRange.lowerBound, to: table.textRange.upperBound, by: 5) {
      guard let function = try? table.function(at: pc),
        let recorded = try? table.frames(
          of: function, at: pc, funcData: funcData, rule: .recordedPosition)
      else { continue }
      let viaParentPC = try? table.frames(of: function, at: pc, funcData: funcData, rule: .parentPC)
      if recorded.count > 1 { inlined += 1 }
      if viaParentPC != recorded {
        mismatches.append(
          "0x\(String(pc, radix: 16)): \(Self.describe(recorded)) vs \(Self.describe(viaParentPC ?? []))"
        )
      }
    }
    #expect(inlined > 1000)
    let clean = mismatches.isEmpty
    #expect(clean, "\(mismatches.count) mismatches: \(mismatches.prefix(8))")
  }

  /// The module data is found by content, with no symbol table: gofunc is the `go.func.*` symbol.
  @Test(.requires(.tool("go")), arguments: ["plain", "stripped", "pie"])
  func moduleDataIsFoundWithoutSymbols(build: String) throws {
    let fixture = try GoFixture.shared.get()
    let path = ["plain": fixture.plain, "stripped": fixture.stripped, "pie": fixture.pie][build]!
    let binary = try GoFixture.loadBinary(path)
    #expect(binary.funcDataProblem == nil)
    let funcData = try #require(binary.funcData)
    let symbols = try fixture.goTool(["nm", build == "pie" ? fixture.pie : fixture.plain])
    let line = try #require(symbols.split(separator: "\n").first { $0.hasSuffix(" go.func.*") })
    let address = try #require(UInt64(line.split(separator: " ")[0], radix: 16))
    #expect(funcData.address == address)
  }

  /// Mutated inline trees, a wrong gofunc and looping entries: every answer is an error or a chain that
  /// ends in the real function and is no deeper than the bound; the process falls back to the
  /// function alone.
  @Test(.requires(.tool("go"))) func corruptInlineDataFailsCleanly() throws {
    let fixture = try GoFixture.shared.get()
    let binary = try GoFixture.loadBinary(fixture.stripped)
    let table = binary.table
    let funcData = try #require(binary.funcData)
    let body = try fixture.disassemble(fixture.plain, "^main\\.(nestedInline|middleFrame)$")
    let pcs = body.map(\.address)
    let first = try #require(try table.function(at: pcs[0]))
    let tree = try #require(
      try table.funcdataOffset(first, index: GoPCLNTable.inlineTreeFuncdata))
    let original = funcData.bytes.bytes

    var errors = 0
    var chains = 0
    func check(_ data: GoFuncData) {
      for pc in pcs {
        guard let function = try? table.function(at: pc) else { continue }
        for rule in [GoPCLNTable.CallSiteRule.recordedPosition, .parentPC] {
          do {
            let frames = try table.frames(of: function, at: pc, funcData: data, rule: rule)
            #expect(frames.count <= GoPCLNTable.maximumInlineDepth + 1)
            #expect(frames.last?.function == function.name)
            chains += 1
          } catch {
            errors += 1
          }
        }
      }
    }
    var generator = SplitMix(seed: 0x696e_6c69_6e65)
    for iteration in 0..<600 {
      var bytes = original
      for _ in 0..<Int.random(in: 1...6, using: &generator) {
        // Mostly inside the tree of the functions tested, sometimes anywhere.
        let index =
          iteration % 4 == 0
          ? Int.random(in: 0..<bytes.count, using: &generator)
          : min(bytes.count - 1, Int(tree) + Int.random(in: 0..<200, using: &generator))
        bytes[index] = UInt8.random(in: 0...255, using: &generator)
      }
      check(GoFuncData(address: funcData.address, bytes: bytes))
    }
    // A wrong gofunc: the bytes start elsewhere, or there are none.
    for shift in [1, 2, 4, 8, 12, 20, 100, 4096] {
      check(
        GoFuncData(
          address: funcData.address + UInt64(shift), bytes: Array(original.dropFirst(shift))))
      check(
        GoFuncData(
          address: funcData.address - UInt64(shift),
          bytes: Array(repeating: 0xff, count: shift) + original))
    }
    check(GoFuncData(address: funcData.address, bytes: []))
    #expect(errors > 0 && chains > 0)

    // Entries that lead back to themselves: a parent that is not below its child, and a parentPc
    // whose inline index is the entry's own. The first is refused, the second stops at the bound.
    let multiply = try #require(
      try fixture.disassemble(fixture.plain, "^main\\.nestedInline$").first {
        $0.instruction.hasPrefix("IMULQ")
      })
    let function = try #require(try table.function(at: multiply.address))
    let innerTree = try #require(
      try table.funcdataOffset(function, index: GoPCLNTable.inlineTreeFuncdata))
    let index = try table.pcdataValue(
      function, table: GoPCLNTable.inlineTreeIndexTable, at: multiply.address)
    #expect(index >= 0)
    var looping = original
    let entry = Int(innerTree) + Int(index) * 20
    looping[entry] = UInt8(truncatingIfNeeded: index)
    looping[entry + 1] = UInt8(truncatingIfNeeded: index >> 8)
    let parentPC = UInt32(multiply.address - function.entry)
    for byte in 0..<4 {
      looping[entry + 16 + byte] = UInt8(truncatingIfNeeded: parentPC >> (8 * byte))
    }
    let loopData = GoFuncData(address: funcData.address, bytes: looping)
    for rule in [GoPCLNTable.CallSiteRule.recordedPosition, .parentPC] {
      #expect(throws: GoPCLNError.self) {
        try table.frames(of: function, at: multiply.address, funcData: loopData, rule: rule)
      }
    }

    // Through the process: the function alone, with its own file:line.
    let file = try #require(FileBytes(path: fixture.stripped))
    let elf = try ELFFile(read: file.read)
    let corrupt = GoBinary(name: fixture.stripped, elf: elf, table: table, funcData: loopData)
    let mapping = Mapping(
      start: 0x40_0000, limit: 0x80_0000, fileOffset: 0, path: fixture.stripped, kind: .file)
    let process = GoProcess(
      pid: 1, images: [GoProcess.Image(mapping: mapping, binary: corrupt, linkStart: 0x40_0000)])
    let frames = try #require(process.symbolize(address: multiply.address, mapping: nil)).frames
    #expect(frames.map { "\($0.function):\($0.line)" } == ["main.nestedInline:61"])
  }
}
