import FlamespanModel
import FlamespanTestSupport
import Foundation
import Testing

@testable import FlamespanSymbolizer

/// Separate debug files found by `.gnu_debuglink` and by build id, and the symbol-table fallback.
@Suite struct DebugInfoTests {
  struct Prepared {
    var directory: URL
    var full: String
    var stripped: String
    var debug: String
    var probe: SizedSymbol
  }

  /// Needs cc and objcopy: the tests that call it require both.
  static func prepare() throws -> Prepared {
    let cc = "cc"
    let objcopy = "objcopy"
    let directory = try TestEnvironment.temporaryDirectory("sym")
    let full = directory.appendingPathComponent("full").path
    _ = try Run.checked(
      [cc] + [
        "-O2", "-g", fixturesDirectory.appendingPathComponent("inline_chains.c").path, "-o", full,
      ])
    // Not `app.debug`: libdwfl also tries BINARY.debug next to the binary without any debuglink.
    let debug = directory.appendingPathComponent("separate-symbols.dbg").path
    let stripped = directory.appendingPathComponent("app").path
    _ = try Run.checked([objcopy] + ["--only-keep-debug", full, debug])
    _ = try Run.checked([objcopy] + ["--strip-debug", full, stripped])
    let probe = try #require(try functionSymbols(of: full).first { $0.name == "classify" })
    return Prepared(
      directory: directory, full: full, stripped: stripped, debug: debug, probe: probe)
  }

  func addresses(_ symbol: SizedSymbol) -> [UInt64] {
    Array(stride(from: symbol.address, to: symbol.address + symbol.size, by: 3))
  }

  @Test(
    "without debug info: function names from the symbol table, no file or line",
    .requires(.tool("cc"), .tool("objcopy")))
  func symbolTableOnly() throws {
    let prepared = try Self.prepare()
    defer { try? FileManager.default.removeItem(at: prepared.directory) }
    let locations = try Symbolizer(options: .init(debugDirectories: [])).symbolize(
      binary: prepared.stripped, virtualAddresses: addresses(prepared.probe))
    for location in locations {
      #expect(location.frames.map(\.function) == ["classify"])
      #expect(location.frames.first?.file == nil)
      #expect(location.frames.first?.line == 0)
    }
  }

  @Test(
    "debug file next to the binary through .gnu_debuglink",
    .requires(.tool("cc"), .tool("objcopy")))
  func debugLink() throws {
    let prepared = try Self.prepare()
    let objcopy = "objcopy"
    defer { try? FileManager.default.removeItem(at: prepared.directory) }
    _ = try Run.checked([objcopy] + ["--add-gnu-debuglink=" + prepared.debug, prepared.stripped])
    let withLink = try Symbolizer(options: .init(debugDirectories: [])).symbolize(
      binary: prepared.stripped, virtualAddresses: addresses(prepared.probe))
    let reference = try Symbolizer().symbolize(
      binary: prepared.full, virtualAddresses: addresses(prepared.probe))
    #expect(withLink.map(\.frames) == reference.map(\.frames))
    #expect(withLink.contains { $0.frames.count > 1 })
  }

  @Test("debug file under DIR/.build-id/xx/rest.debug", .requires(.tool("cc"), .tool("objcopy")))
  func buildID() throws {
    let prepared = try Self.prepare()
    defer { try? FileManager.default.removeItem(at: prepared.directory) }
    let root = prepared.directory.appendingPathComponent("debug-root")
    let hex = try #require(try buildIDOf(prepared.stripped)).hex
    let target = root.appendingPathComponent(".build-id/\(hex.prefix(2))/\(hex.dropFirst(2)).debug")
    try FileManager.default.createDirectory(
      at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
    try FileManager.default.moveItem(atPath: prepared.debug, toPath: target.path)

    let found = try Symbolizer(options: .init(debugDirectories: [root.path])).symbolize(
      binary: prepared.stripped, virtualAddresses: addresses(prepared.probe))
    let reference = try Symbolizer().symbolize(
      binary: prepared.full, virtualAddresses: addresses(prepared.probe))
    #expect(found.map(\.frames) == reference.map(\.frames))
    #expect(found.allSatisfy { $0.frames.first?.line ?? 0 > 0 })

    let notFound = try Symbolizer(options: .init(debugDirectories: [])).symbolize(
      binary: prepared.stripped, virtualAddresses: addresses(prepared.probe))
    #expect(notFound.allSatisfy { $0.frames.count == 1 && $0.frames[0].file == nil })
  }
}

/// The build id as `readelf -n` prints it.
func buildIDOf(_ path: String) throws -> BuildID? {
  let text = try Run.checked(["readelf"] + ["-n", path])
  guard let line = text.split(separator: "\n").first(where: { $0.contains("Build ID:") }),
    let hex = line.split(separator: " ").last
  else { return nil }
  return BuildID(hex: String(hex))
}
