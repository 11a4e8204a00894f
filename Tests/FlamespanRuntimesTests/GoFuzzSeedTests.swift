import FlamespanRuntimes
import FlamespanTestSupport
import Foundation
import Testing

/// The hand-assembled Go tables as seeds of the gopclntab fuzz corpus: a few hundred bytes in each
/// layout, with an inline tree, beside the real table of an empty Go program. They must keep parsing;
/// `FLAMESPAN_WRITE_FUZZ_SEEDS=1` rewrites them.
@Suite struct GoFuzzSeedTests {
  @Test(arguments: [(UInt32(0xffff_fff0), "go118"), (UInt32(0xffff_fff1), "go120")])
  func syntheticSeedParses(magic: UInt32, name: String) throws {
    let url = TestEnvironment.packageRoot.appendingPathComponent(
      "Fuzz/Corpus/gopclntab/synthetic-\(name)-inline.gopclntab")
    if ProcessInfo.processInfo.environment["FLAMESPAN_WRITE_FUZZ_SEEDS"] == "1" {
      try Data(GoSyntheticTableTests.table(magic: magic, inline: true)).write(to: url)
    }
    let table = try GoPCLNTable(bytes: [UInt8](Data(contentsOf: url)))
    #expect(table.functionCount == 2)
    #expect(try table.function(at: table.textRange.lowerBound)?.name == "main.a")
  }
}
