import FlamespanRuntimes
import FlamespanTestSupport
import Foundation
import Testing

/// Every input the gopclntab fuzz target crashed on (Fuzz/Crashers/gopclntab/), replayed as the target
/// runs it: each must now give values or `GoPCLNError`s, never trap.
@Suite struct GoFuzzCrasherTests {
  static let directory = TestEnvironment.packageRoot.appendingPathComponent(
    "Fuzz/Crashers/gopclntab")

  static func crashers() throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
  }

  /// As Fuzz/Targets/GoPCLN/main.swift does: 33 pcs over the text, each looked up every way, with the
  /// input standing in for the funcdata too.
  static func replay(_ bytes: [UInt8]) {
    guard let table = try? GoPCLNTable(bytes: bytes, textSectionAddress: 0x40_1000) else { return }
    let funcData = GoFuncData(address: 0, bytes: bytes)
    let span = table.textRange.upperBound - table.textRange.lowerBound
    var pcs = (0..<32).map { table.textRange.lowerBound + span / 32 * UInt64($0) }
    pcs.append(table.textRange.upperBound - 1)
    for pc in pcs {
      guard let function = try? table.function(at: pc) else { continue }
      _ = try? table.spDelta(of: function, at: pc)
      _ = try? table.frameAllocationPC(of: function)
      _ = try? table.sourcePosition(of: function, at: pc)
      _ = try? table.frames(of: function, at: pc, funcData: nil)
      _ = try? table.frames(of: function, at: pc, funcData: funcData)
    }
  }

  @Test func crashersAreCommitted() throws {
    #expect(try Self.crashers().contains("crash-function-end-past-sentinel"))
  }

  @Test(arguments: try crashers())
  func crasherReplays(name: String) throws {
    Self.replay(try [UInt8](Data(contentsOf: Self.directory.appendingPathComponent(name))))
  }

  /// The first crasher: a function whose next entry lies past the table's end sentinel, with the text
  /// start near 2^64, overflowed computing the function's end address. It is now an unsorted table.
  @Test func functionEndPastTheSentinelIsMalformed() throws {
    let bytes = try [UInt8](
      Data(contentsOf: Self.directory.appendingPathComponent("crash-function-end-past-sentinel")))
    let table = try GoPCLNTable(bytes: bytes, textSectionAddress: 0x40_1000)
    let span = table.textRange.upperBound - table.textRange.lowerBound
    var unsorted = 0
    for pc in (0..<32).map({ table.textRange.lowerBound + span / 32 * UInt64($0) }) {
      do { _ = try table.function(at: pc) } catch {
        if "\(error)".contains("not sorted") { unsorted += 1 }
      }
    }
    #expect(unsorted > 0)
  }
}
