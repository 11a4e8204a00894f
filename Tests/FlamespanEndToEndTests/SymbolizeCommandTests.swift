import FlamespanTestSupport
import Foundation
import Testing

/// `flamespan symbolize` as a user calls it, including the files it must refuse without crashing.
@Suite struct SymbolizeCommandTests {
  @Test(.requires(.tool("llvm-symbolizer"))) func agreesWithLlvmSymbolizerOnTheSampleBinary() throws
  {
    let directory = try TestEnvironment.buildSamples(
      into: try TestEnvironment.temporaryDirectory("sym"))
    let binary = directory.appendingPathComponent("hotpaths").path
    let nm = try Run.command(["nm", "--defined-only", binary])
    let address = try #require(
      nm.stdout.split(separator: "\n").first { $0.hasSuffix(" hot_path_heavy") }?.split(
        separator: " "
      ).first)
    // A few bytes into the function: inside the inlined mix_step loop or its prologue, either way a real frame.
    let query = String(format: "0x%llx\n", UInt64(address, radix: 16)! + 8)
    let ours = try Run.command(
      [TestEnvironment.flamespanBinary, "symbolize", "--binary", binary], input: query)
    #expect(ours.status == 0, "\(ours.stderr)")
    let json = try #require(
      try JSONSerialization.jsonObject(with: Data(ours.stdout.utf8)) as? [String: Any])
    let frames = try #require(json["frames"] as? [[String: Any]])
    let reference = try Run.command(["llvm-symbolizer", "--obj=\(binary)"], input: query)
    let referenceFunctions = reference.stdout.split(separator: "\n").enumerated().filter {
      $0.offset % 2 == 0
    }
    .map { String($0.element) }
    #expect(frames.compactMap { $0["function"] as? String } == referenceFunctions)
  }

  @Test(arguments: [
    "truncated", "truncated-4k", "truncated-half", "truncated-tail", "garbage", "missing",
  ])
  func refusesBadBinariesWithAMessage(kind: String) throws {
    let directory = try TestEnvironment.temporaryDirectory("badelf")
    let path = directory.appendingPathComponent("bad.so").path
    switch kind {
    case "truncated", "truncated-4k", "truncated-half", "truncated-tail":
      // Cut inside the headers, after them, halfway, and just before the section header table at the
      // end: the last three have a valid header and used to give "no symbols" with exit 0.
      let libc = try Data(contentsOf: URL(fileURLWithPath: "/lib/x86_64-linux-gnu/libc.so.6"))
      let length = [
        "truncated": 300, "truncated-4k": 4096, "truncated-half": libc.count / 2,
        "truncated-tail": libc.count - 100,
      ][kind]!
      try libc.prefix(length).write(to: URL(fileURLWithPath: path))
    case "garbage":
      try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 7) }).write(
        to: URL(fileURLWithPath: path))
    default:
      break
    }
    let result = try Run.command(
      [TestEnvironment.flamespanBinary, "symbolize", "--binary", path], input: "0x1000\n")
    #expect(result.status == 1, "status \(result.status), stderr: \(result.stderr)")
    #expect(result.stderr.contains(path), "the message should name the file: \(result.stderr)")
    #expect(!result.stderr.contains("Fatal error"), "crashed: \(result.stderr)")
  }
}
