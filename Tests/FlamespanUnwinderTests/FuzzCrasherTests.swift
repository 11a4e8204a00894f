import FlamespanELF
import FlamespanTestSupport
import Foundation
import Testing

@testable import FlamespanUnwinder

/// Every input the CFI fuzz target crashed on (Fuzz/Crashers/cfi/), replayed as the target runs it: read
/// through `FileBytes`, with the rule asked at the target's fixed addresses and at the two addresses in
/// the input's last 16 bytes. Each must now give a summary or nil, never trap.
@Suite struct FuzzCrasherTests {
  static let directory = TestEnvironment.packageRoot.appendingPathComponent("Fuzz/Crashers/cfi")

  static func crashers() throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
  }

  /// As Fuzz/Targets/CFI/main.swift derives them.
  static func addresses(_ bytes: [UInt8]) -> [UInt64] {
    var addresses: [UInt64] = [0x40_0144, 0x40_0150, 0x40_1000]
    if bytes.count >= 16 {
      for start in [bytes.count - 16, bytes.count - 8] {
        addresses.append(
          (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[start + $1]) << (8 * $1) })
      }
    }
    return addresses
  }

  @Test func crashersAreCommitted() throws {
    let crashers = try Self.crashers()
    #expect(crashers.contains("crash-eh-frame-file-offset-overflow"))
    #expect(crashers.contains("crash-fde-augmentation-length-overflow"))
    #expect(crashers.contains("crash-sleb128-sign-extension-overflow"))
    #expect(crashers.contains("crash-eh-frame-hdr-address-overflow"))
  }

  @Test(arguments: try crashers())
  func crasherReplays(name: String) throws {
    let path = Self.directory.appendingPathComponent(name).path
    let file = try #require(FileBytes(path: path))
    let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
    _ = CFIProbe.evaluate(read: file.read, addresses: Self.addresses(bytes))
  }

  /// The first crasher: `.eh_frame` at file offset 2^64 − 56 overflowed when an FDE offset from
  /// `.eh_frame_hdr` was added to it. The file's CFI is now refused with a reason.
  @Test func ehFrameAtAnImpossibleFileOffsetIsRefused() throws {
    let path = Self.directory.appendingPathComponent("crash-eh-frame-file-offset-overflow").path
    let file = try #require(FileBytes(path: path))
    #expect(throws: CFIError.self) { try ELFSections(read: file.read) }
  }

  /// The second: an FDE's augmentation data length, a ULEB128, of 2^63 or more trapped on its way to Int.
  /// A length is now checked against the bytes left.
  @Test func augmentationLengthPastTheEntryIsCorrupt() throws {
    var reader = ByteReader([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0xaa])
    #expect(throws: CFIError.self) { try reader.lengthULEB128() }
    var short = ByteReader([0x02, 0xaa])
    #expect(throws: CFIError.self) { try short.lengthULEB128() }
    var fits = ByteReader([0x01, 0xaa])
    #expect(try fits.lengthULEB128() == 1)
  }

  /// The third: a CIE's data alignment, a SLEB128, of 9 bytes with its sign bit at bit 62 trapped while
  /// sign-extending (negating 1 << 63). Values at every length now decode.
  @Test func sleb128OfNineAndTenBytesDecodes() throws {
    var nine = ByteReader([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40])
    #expect(try nine.sleb128() == -(1 << 62))
    var minimum = ByteReader([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f])
    #expect(try minimum.sleb128() == .min)
    var minusOne = ByteReader([0x7f])
    #expect(try minusOne.sleb128() == -1)
    var small = ByteReader([0xc0, 0xbb, 0x78])
    #expect(try small.sleb128() == -123_456)
  }
}
