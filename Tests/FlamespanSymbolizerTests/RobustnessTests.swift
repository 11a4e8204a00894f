import FlamespanModel
import FlamespanTestSupport
import Foundation
import Testing

@testable import FlamespanSymbolizer

/// Bad files give a `SymbolizerError` naming the problem; bad addresses give unknown locations. Nothing crashes.
@Suite struct RobustnessTests {
  static func fixture(in directory: URL) throws -> String {
    let output = directory.appendingPathComponent("fixture").path
    _ = try Run.checked(
      ["cc"] + [
        "-O2", "-g", fixturesDirectory.appendingPathComponent("inline_chains.c").path, "-o", output,
      ])
    return output
  }

  func expectError(_ code: SymbolizerError.Code, path: String, _ comment: Comment? = nil) {
    do {
      _ = try Symbolizer().symbolize(binary: path, virtualAddresses: [0x1000])
      Issue.record("expected \(code) for \(path)")
    } catch {
      #expect(error.code == code, comment)
      #expect(error.path == path)
      #expect(!error.description.isEmpty)
    }
  }

  @Test("missing file, directory, non-ELF and empty file are told apart")
  func wrongKindsOfFile() throws {
    let directory = try TestEnvironment.temporaryDirectory("sym")
    defer { try? FileManager.default.removeItem(at: directory) }
    expectError(.fileNotFound, path: directory.appendingPathComponent("missing").path)
    expectError(.notRegularFile, path: directory.path)
    let text = directory.appendingPathComponent("text")
    try Data("hello, not an ELF file\n".utf8).write(to: text)
    expectError(.notELF, path: text.path)
    let empty = directory.appendingPathComponent("empty")
    try Data().write(to: empty)
    expectError(.notELF, path: empty.path)
  }

  @Test("truncated ELF files at many lengths fail cleanly or resolve, never crash")
  func truncated() throws {
    let directory = try TestEnvironment.temporaryDirectory("sym")
    defer { try? FileManager.default.removeItem(at: directory) }
    let original = try Data(contentsOf: URL(fileURLWithPath: try Self.fixture(in: directory)))
    let header = original.prefix(40)
    let headerOnly = directory.appendingPathComponent("header-only")
    try header.write(to: headerOnly)
    expectError(.corruptELF, path: headerOnly.path)

    let symbolizer = Symbolizer()
    var failures = 0
    for length in stride(from: 64, to: original.count, by: max(1, original.count / 97)) {
      let path = directory.appendingPathComponent("truncated-\(length)")
      try original.prefix(length).write(to: path)
      do {
        let locations = try symbolizer.symbolize(
          binary: path.path, virtualAddresses: [0x1000, 0x1150, 0x11e0])
        #expect(locations.count == 3)
      } catch {
        failures += 1
        #expect([.corruptELF, .dwarfError].contains(error.code), "\(error)")
      }
    }
    // Cutting the section headers off the end makes most prefixes unusable.
    #expect(failures > 0)
  }

  @Test("garbage after a valid ELF header and flipped bytes never crash")
  func garbage() throws {
    let directory = try TestEnvironment.temporaryDirectory("sym")
    defer { try? FileManager.default.removeItem(at: directory) }
    let original = try Data(contentsOf: URL(fileURLWithPath: try Self.fixture(in: directory)))
    var generator = SplitMix(seed: 42)

    var garbage = Data(original.prefix(64))
    garbage.append(contentsOf: (0..<8192).map { _ in UInt8.random(in: 0...255, using: &generator) })
    let garbagePath = directory.appendingPathComponent("garbage")
    try garbage.write(to: garbagePath)
    expectError(.corruptELF, path: garbagePath.path)

    let symbols = try functionSymbols(of: directory.appendingPathComponent("fixture").path)
    let addresses = randomAddresses(in: symbols, perSymbol: 5, seed: 7)
    let symbolizer = Symbolizer()
    for round in 0..<40 {
      var damaged = original
      for _ in 0..<64 {
        let index = Int.random(in: 64..<damaged.count, using: &generator)
        damaged[index] = UInt8.random(in: 0...255, using: &generator)
      }
      let path = directory.appendingPathComponent("damaged-\(round)")
      try damaged.write(to: path)
      if let locations = try? symbolizer.symbolize(binary: path.path, virtualAddresses: addresses) {
        #expect(locations.count == addresses.count)
      }
    }
  }

  @Test("addresses outside any function give a reason, and do not spoil the batch")
  func badAddresses() throws {
    let directory = try TestEnvironment.temporaryDirectory("sym")
    defer { try? FileManager.default.removeItem(at: directory) }
    let binary = try Self.fixture(in: directory)
    let main = try #require(try functionSymbols(of: binary).first { $0.name == "main" })
    let locations = try Symbolizer().symbolize(
      binary: binary, virtualAddresses: [0, main.address, 0xffff_ffff_ffff_fff0, main.address + 1])
    #expect(locations.map(\.address) == [0, main.address, 0xffff_ffff_ffff_fff0, main.address + 1])
    #expect(locations[0].frames.isEmpty && locations[0].unknownReason != nil)
    #expect(locations[2].frames.isEmpty && locations[2].unknownReason != nil)
    #expect(locations[1].frames.last?.function == "main")
    #expect(locations[3].frames.last?.function == "main")
  }
}
