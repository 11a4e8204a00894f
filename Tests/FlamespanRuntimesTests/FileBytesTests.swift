import FlamespanELF
import FlamespanRuntimes
import FlamespanTestSupport
import Foundation
import Testing

/// Reads of sizes taken from untrusted headers: what a file does not have is never allocated.
@Suite struct FileBytesTests {
  static func file(_ bytes: [UInt8]) throws -> (FileBytes, URL) {
    let url = try TestEnvironment.temporaryDirectory("file-bytes").appendingPathComponent("input")
    try Data(bytes).write(to: url)
    return (try #require(FileBytes(path: url.path)), url)
  }

  /// Before the fix, `read` allocated (and zeroed) `count` bytes before reading: a terabyte here trapped,
  /// and the ELF crasher below made a 1.5 GB allocation per open.
  @Test func absurdCountOfASmallFileIsRefusedWithoutAllocatingIt() throws {
    let (file, url) = try Self.file(Array(repeating: 7, count: 600))
    defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
    #expect(file.read(0, 1 << 40) == nil)
    #expect(file.read(100, 501) == nil)
    #expect(file.read(100, 500) == Array(repeating: 7, count: 500))
    #expect(file.read(UInt64(Int64.max), 1) == nil)
    #expect(file.read(UInt64.max, 1) == nil)
  }

  /// A read larger than the first buffer grows to the whole request when the file has it.
  @Test func largeReadsStillReturnEveryByte() throws {
    let bytes = (0..<(3 << 20) + 5).map { UInt8(truncatingIfNeeded: $0 &* 31) }
    let (file, url) = try Self.file(bytes)
    defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
    #expect(file.read(0, bytes.count) == bytes)
    #expect(file.read(7, bytes.count - 7) == Array(bytes[7...]))
    #expect(file.read(7, bytes.count - 6) == nil)
  }

  /// The ELF fuzz target's crasher: a 510-byte ELF whose section header table claims 1.5 GB. It reads as
  /// an ELF file without sections, and the Go loader finds no table.
  @Test func elfCrasherHeadersAskForGigabytes() throws {
    let crasher = TestEnvironment.packageRoot.appendingPathComponent(
      "Fuzz/Crashers/elf/oom-section-headers-1.5GB")
    let file = try #require(FileBytes(path: crasher.path))
    let elf = try ELFFile(read: file.read)
    #expect(elf.sections.isEmpty)
    guard case .notGo = GoBinary.load(name: "crasher", read: file.read) else {
      Issue.record("a file without sections is not a Go binary")
      return
    }
  }
}
