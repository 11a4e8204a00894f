import FlamespanExport
import FlamespanTestSupport
import Foundation
import Testing

@Suite struct GzipTests {
  @Test(arguments: [0, 1, 100, 65_536, 1_000_003])
  func roundTripsAnySize(size: Int) throws {
    var generator = SplitMix(seed: UInt64(size))
    // Half random, half repetitive, so both stored and compressed blocks occur.
    let bytes = (0..<size).map { index in
      index % 2 == 0 ? UInt8(truncatingIfNeeded: generator.next()) : UInt8(index % 7)
    }
    let compressed = try Gzip.compress(bytes)
    #expect(Array(compressed.prefix(2)) == [0x1f, 0x8b], "gzip magic")
    #expect(try Gzip.decompress(compressed) == bytes)
  }

  /// Our output must be ordinary gzip, and ordinary gzip must be readable by us.
  @Test(.requires(.tool("gzip"))) func interoperatesWithTheGzipTool() throws {
    let gzip = "gzip"
    let directory = try TemporaryDirectory("gzip")
    let text = Array(String(repeating: "flamespan gzip interop line\n", count: 5_000).utf8)
    try Data(try Gzip.compress(text)).write(to: URL(fileURLWithPath: directory.file("ours.gz")))
    let test = try Run.command([gzip, "-t", directory.file("ours.gz")])
    #expect(test.status == 0, "gzip -t rejected our output: \(test.stderr)")

    try Data(text).write(to: URL(fileURLWithPath: directory.file("theirs")))
    #expect(try Run.command([gzip, "-9", directory.file("theirs")]).status == 0)
    let theirs = try Data(contentsOf: URL(fileURLWithPath: directory.file("theirs.gz")))
    #expect(try Gzip.decompress(Array(theirs)) == text)
  }

  @Test func truncatedOrCorruptInputIsAnError() throws {
    let compressed = try Gzip.compress(Array(String(repeating: "abc", count: 1000).utf8))
    for length in [0, 1, 2, 10, compressed.count / 2, compressed.count - 1] {
      #expect(throws: ExportError.self, "\(length) bytes") {
        try Gzip.decompress(Array(compressed.prefix(length)))
      }
    }
    var corrupt = compressed
    corrupt[compressed.count - 6] ^= 0xff  // inside the CRC32 trailer
    #expect {
      try Gzip.decompress(corrupt)
    } throws: { error in
      guard let error = error as? ExportError else { return false }
      return error.code == .decompressionFailed && error.description.contains("corrupt")
    }
  }
}
