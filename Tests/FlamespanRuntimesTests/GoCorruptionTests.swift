import FlamespanRuntimes
import FlamespanTestSupport
import Foundation
import Testing

/// Truncated and mutated tables of a real binary: every outcome is a value or a `GoPCLNError`, never
/// a crash or a hang.
@Suite struct GoCorruptionTests {

  /// Every lookup the plug-in makes, at `pcs`; returns (values, errors) seen.
  static func exercise(_ bytes: [UInt8], pcs: [UInt64], funcData: GoFuncData? = nil) -> (
    values: Int, errors: Int
  ) {
    var values = 0
    var errors = 0
    do {
      let table = try GoPCLNTable(bytes: bytes)
      for pc in pcs {
        do {
          guard let function = try table.function(at: pc) else { continue }
          _ = try table.spDelta(of: function, at: pc)
          _ = try table.frameAllocationPC(of: function)
          _ = try table.sourcePosition(of: function, at: pc)
          // The intact inline trees, read through the mutated pcdata and funcdata offsets.
          let frames = try table.frames(of: function, at: pc, funcData: funcData)
          guard frames.count <= GoPCLNTable.maximumInlineDepth + 1 else { return (values, -1) }
          values += 1
        } catch {
          errors += 1
        }
      }
    } catch {
      errors += 1
    }
    return (values, errors)
  }

  /// Pcs spread over the text that the intact table knows: the padding between functions is covered
  /// by no pcvalue table, so a pc there is left out.
  static func pcs(_ bytes: [UInt8]) throws -> [UInt64] {
    let table = try GoPCLNTable(bytes: bytes)
    let range = table.textRange
    let step = (range.upperBound - range.lowerBound) / 60
    let pcs = stride(from: range.lowerBound, to: range.upperBound, by: Int(step)).map { $0 + 3 }
    return pcs.filter { exercise(bytes, pcs: [$0]) == (1, 0) }
  }

  @Test(.requires(.tool("go"))) func truncatedTablesFailCleanly() throws {
    let fixture = try GoFixture.shared.get()
    let bytes = try GoFixture.tableBytes(fixture.stripped)
    let pcs = try Self.pcs(bytes)
    #expect(pcs.count >= 40)
    var errors = 0
    let lengths = Array(0..<80) + Array(stride(from: 80, to: bytes.count, by: bytes.count / 400))
    for length in lengths {
      errors += Self.exercise(Array(bytes.prefix(length)), pcs: pcs).errors
    }
    // Every cut short of the header, and most cuts after it, must be reported.
    #expect(errors >= 80)
  }

  @Test(.requires(.tool("go"))) func mutatedTablesNeverCrashOrHang() throws {
    let fixture = try GoFixture.shared.get()
    let original = try GoFixture.tableBytes(fixture.stripped)
    let funcData = try GoFixture.loadBinary(fixture.stripped).funcData
    #expect(funcData != nil)
    let pcs = Array(try Self.pcs(original).prefix(12))
    let header = try GoPCLNTable(bytes: original)
    // Bias mutations towards the parts every lookup reads: the header, the function table and records.
    let hotEnd = min(original.count, 72 + (header.functionCount + 1) * 8 + 0x4_0000)
    var generator = SplitMix(seed: 0x666c_616d_6573_7061)
    let clock = ContinuousClock()
    let started = clock.now
    var errors = 0
    var values = 0
    for iteration in 0..<3000 {
      var bytes = original
      for _ in 0..<Int.random(in: 1...8, using: &generator) {
        let limit = iteration % 2 == 0 ? hotEnd : bytes.count
        let index = Int.random(in: 0..<limit, using: &generator)
        bytes[index] =
          iteration % 3 == 0 ? UInt8.random(in: 0...255, using: &generator) : bytes[index] ^ 0xff
      }
      let outcome = Self.exercise(bytes, pcs: pcs, funcData: funcData)
      #expect(outcome.errors >= 0, "an inline chain beyond the depth bound")
      errors += outcome.errors
      values += outcome.values
    }
    #expect(errors > 0)
    #expect(values > 0)
    #expect(clock.now - started < .seconds(120))
  }
}
