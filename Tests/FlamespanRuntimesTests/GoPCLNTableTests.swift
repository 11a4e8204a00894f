import FlamespanRuntimes
import FlamespanTestSupport
import Foundation
import Testing

/// The `.gopclntab` reader against what Go's own tools say about the same binary.
@Suite struct GoPCLNTableTests {
  /// Function entries, and every instruction of a few functions (inlined code included).
  static func sampleAddresses(_ fixture: GoFixture) throws -> [UInt64] {
    let symbols = try fixture.textSymbols(fixture.plain)
    var addresses = symbols.filter { $0.key.hasPrefix("main.") || $0.key.hasPrefix("runtime.g") }
      .values.sorted()
    for instruction in try fixture.disassemble(
      fixture.plain, "^main\\.(middleFrame|hashLoop|main)$")
    {
      addresses.append(instruction.address)
    }
    // Inside assembly, and a few bytes into each of some Go functions.
    addresses += symbols.filter { $0.key.hasPrefix("crypto/sha256.") }.values.map { $0 + 7 }
    return addresses
  }

  @Test(.requires(.tool("go")), arguments: ["plain", "stripped"])
  func namesFilesAndLinesMatchAddr2line(build: String) throws {
    let fixture = try GoFixture.shared.get()
    let binary = try GoFixture.loadBinary(build == "plain" ? fixture.plain : fixture.stripped)
    let addresses = try Self.sampleAddresses(fixture)
    #expect(addresses.count > 100)
    // addr2line reads the unstripped build; the stripped one has the same code at the same addresses.
    let expected = try fixture.addr2line(fixture.plain, addresses)
    var mismatches: [String] = []
    for (address, want) in zip(addresses, expected) {
      let function = try #require(try binary.table.function(at: address))
      let position = try binary.table.sourcePosition(of: function, at: address)
      if function.name != want.function || position.file != want.file || position.line != want.line
      {
        mismatches.append(
          "0x\(String(address, radix: 16)): \(function.name) \(position.file ?? "?"):\(position.line)"
            + " vs \(want.function) \(want.file):\(want.line)")
      }
    }
    #expect(mismatches.isEmpty, "\(mismatches.prefix(10))")
  }

  @Test(.requires(.tool("go"))) func functionBoundsMatchTheSymbolTable() throws {
    let fixture = try GoFixture.shared.get()
    let binary = try GoFixture.loadBinary(fixture.stripped)
    let symbols = try fixture.textSymbols(fixture.plain)
    let middle = try #require(symbols["main.middleFrame"])
    let hashLoop = try #require(symbols["main.hashLoop"])
    let function = try #require(try binary.table.function(at: middle + 5))
    #expect(function.name == "main.middleFrame")
    #expect(function.entry == middle)
    // The next function in the binary starts where this one ends (padding belongs to this one).
    #expect(function.end <= hashLoop)
    #expect(try binary.table.function(at: function.end)?.entry == function.end)
    #expect(binary.table.textRange.contains(middle))
    #expect(try binary.table.function(at: binary.table.textRange.upperBound) == nil)
    #expect(try binary.table.function(at: 0x1000) == nil)
  }

  /// The SP delta after the prologue is the `SUBQ $n, SP` objdump shows; 0 at the entry, and in a
  /// function without a frame.
  @Test(.requires(.tool("go"))) func spDeltasMatchObjdumpPrologues() throws {
    let fixture = try GoFixture.shared.get()
    let binary = try GoFixture.loadBinary(fixture.stripped)
    let pattern =
      "^(main\\.(leafAdd|middleFrame|hashLoop|main)|runtime\\.(main|goexit1)|crypto/sha256\\.block\\.abi0)$"
    let instructions = try fixture.disassemble(fixture.plain, pattern)
    var checkedFrames = 0
    var byFunction: [UInt64: [(address: UInt64, instruction: String)]] = [:]
    for instruction in instructions {
      let function = try #require(try binary.table.function(at: instruction.address))
      byFunction[function.entry, default: []].append(instruction)
    }
    #expect(byFunction.count == 7)
    for (entry, body) in byFunction {
      let function = try #require(try binary.table.function(at: entry))
      #expect(try binary.table.spDelta(of: function, at: entry) == 0, "\(function.name)")
      guard
        let subIndex = body.firstIndex(where: {
          $0.instruction.hasPrefix("SUBQ $") && $0.instruction.hasSuffix(", SP")
        })
      else {
        // No frame (main.leafAdd): the delta is 0 everywhere.
        for instruction in body {
          #expect(try binary.table.spDelta(of: function, at: instruction.address) == 0)
        }
        continue
      }
      let sub = body[subIndex].instruction
      let size = try #require(
        Int32(sub.dropFirst("SUBQ $0x".count).prefix { $0 != "," }, radix: 16))
      #expect(try binary.table.spDelta(of: function, at: body[subIndex].address) == 0)
      let afterSub = body[subIndex + 1].address
      #expect(try binary.table.spDelta(of: function, at: afterSub) == size, "\(function.name)")
      #expect(try binary.table.frameAllocationPC(of: function) == afterSub)
      // Every call happens with the whole frame allocated, but the stack-growth call that the
      // preamble jumps to before allocating it.
      for call in body
      where call.instruction.hasPrefix("CALL ") && !call.instruction.contains("morestack") {
        #expect(
          try binary.table.spDelta(of: function, at: call.address) == size, "\(function.name)")
      }
      checkedFrames += 1
    }
    #expect(checkedFrames >= 5)
  }

  @Test(.requires(.tool("go"))) func topFrameFlagsTheOutermostFunctions() throws {
    let fixture = try GoFixture.shared.get()
    let binary = try GoFixture.loadBinary(fixture.stripped)
    let symbols = try fixture.textSymbols(fixture.plain)
    for name in ["runtime.goexit.abi0", "runtime.mstart.abi0", "runtime.rt0_go.abi0"] {
      let address = try #require(symbols[name])
      let function = try #require(try binary.table.function(at: address))
      #expect(function.isTopFrame, "\(name)")
    }
    for name in ["main.main", "runtime.main", "main.middleFrame"] {
      let address = try #require(symbols[name])
      let function = try #require(try binary.table.function(at: address))
      #expect(!function.isTopFrame, "\(name)")
    }
    #expect(binary.table.version == .go118)
    #expect(binary.table.pointerSize == 8 && binary.table.minLC == 1)
  }

  @Test func refusesOlderLayoutsWithAReason() {
    for (magic, version) in [(UInt32(0xffff_fffb), "1.2"), (0xffff_fffa, "1.16")] {
      var bytes = [UInt8](repeating: 0, count: 128)
      for index in 0..<4 { bytes[index] = UInt8(truncatingIfNeeded: magic >> (8 * index)) }
      bytes[6] = 1
      bytes[7] = 8
      #expect {
        try GoPCLNTable(bytes: bytes)
      } throws: { error in
        guard let error = error as? GoPCLNError else { return false }
        return error.kind == .unsupportedVersion && error.reason.contains(version)
      }
    }
    #expect(throws: GoPCLNError.self) { try GoPCLNTable(bytes: [0xf0, 0xff]) }
  }
}
