import FlamespanModel
import FlamespanProcess
import FlamespanTestSupport
import FlamespanUnwinder
import Foundation
import Testing

/// Fuzz-style: flips bytes in a fixture's `.eh_frame` (or `.debug_frame`) and unwinds a real captured
/// stack against the damaged file. The unwinder must never crash or loop; damage shows up as an unknown
/// or corrupt end with a reason.
@Suite struct CorruptCFITests {
  @Test(arguments: [".eh_frame", ".eh_frame_hdr", ".debug_frame"])
  func mutatedCFINeverCrashes(section: String) throws {
    let flags =
      section != ".debug_frame"
      ? ["-O2", "-g", "-fomit-frame-pointer"]
      : [
        "-O2", "-g", "-fomit-frame-pointer", "-fno-asynchronous-unwind-tables",
        "-fno-unwind-tables",
      ]
    let binary = try FixtureCapture.build(flags: flags)
    let capture = try FixtureCapture.run(binary, mode: "qsort")
    let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: binary)))
    let (offset, size) = try Self.sectionRange(section, in: binary)
    let directory = try TestEnvironment.temporaryDirectory("unwind-fuzz")
    defer { try? FileManager.default.removeItem(at: directory) }

    let clean = Unwinder().unwind(
      registers: capture.registers, stack: capture.stack, stackStart: capture.registers.sp,
      maps: capture.maps)
    #expect(clean.end == .reachedEnd)

    var random = SplitMix(seed: UInt64(section.utf8.count))
    var endings: [String: Int] = [:]
    let unwinder = Unwinder(fileCapacity: 4)
    for round in 0..<300 {
      var bytes = original
      // Few flips mostly damage one entry; many flips damage lengths and pointers across the section.
      let flips = round % 3 == 0 ? 1 : (round % 3 == 1 ? 4 : 40)
      for _ in 0..<flips {
        let position = offset + Int(random.next() % UInt64(size))
        bytes[position] =
          round % 2 == 0 ? UInt8(truncatingIfNeeded: random.next()) : ~bytes[position]
      }
      let path = directory.appendingPathComponent("mutant-\(round)").path
      try Data(bytes).write(to: URL(fileURLWithPath: path))
      let maps = try Self.maps(capture.maps, replacing: binary, with: path)
      let result = unwinder.unwind(
        registers: capture.registers, stack: capture.stack, stackStart: capture.registers.sp,
        maps: maps, maxFrames: 127)
      #expect(result.addresses.count <= 127)
      #expect(result.addresses.first == capture.registers.ip)
      switch result.end {
      case .reachedEnd: endings["end", default: 0] += 1
      case .truncated: endings["truncated", default: 0] += 1
      case .unknownCode(_, let reason):
        #expect(!reason.isEmpty)
        endings["unknown", default: 0] += 1
      case .corruptCFI(_, let reason):
        #expect(!reason.isEmpty)
        endings["corrupt", default: 0] += 1
      case .frameLimit: endings["limit", default: 0] += 1
      case .stopped(_, _, let detail):
        // Only runtimes and the frame-pointer fallback stop this way; neither is in use here.
        Issue.record("stopped without runtimes or fallback: \(detail)")
      }
      // Kept until the end: a deleted file's inode could be reused by the next mutant, and the cache
      // rightly treats the same (device, inode) as the same file.
    }
    // The damage must have been seen, not silently ignored.
    #expect(endings["unknown", default: 0] + endings["corrupt", default: 0] > 0, "\(endings)")
    #expect(unwinder.cachedFiles <= 4)
  }

  @Test func garbageInsteadOfAnELFFileIsAnUnknownFrame() throws {
    let binary = try FixtureCapture.build()
    let capture = try FixtureCapture.run(binary, mode: "deep")
    let directory = try TestEnvironment.temporaryDirectory("unwind-garbage")
    defer { try? FileManager.default.removeItem(at: directory) }
    for (name, bytes) in [
      ("empty", [UInt8]()), ("short", [0x7f, 0x45, 0x4c, 0x46]),
      ("noise", (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919) }),
    ] {
      let path = directory.appendingPathComponent(name).path
      try Data(bytes).write(to: URL(fileURLWithPath: path))
      let result = Unwinder().unwind(
        registers: capture.registers, stack: capture.stack, stackStart: capture.registers.sp,
        maps: try Self.maps(capture.maps, replacing: binary, with: path))
      #expect(result.addresses == [capture.registers.ip], "\(name)")
      guard case .unknownCode(let address, let reason) = result.end else {
        Issue.record("\(name): ended with \(result.end.description)")
        continue
      }
      #expect(address == capture.registers.ip)
      #expect(reason.contains(path), "\(name): \(reason)")
    }
  }

  /// The file offset and size of `section`, from readelf.
  static func sectionRange(_ section: String, in binary: String) throws -> (Int, Int) {
    let output = try Run.command(["readelf", "-SW", binary]).stdout
    for line in output.split(separator: "\n") where line.contains(" \(section) ") {
      let fields = line.split(separator: "]").last!.split(separator: " ")
      // Name Type Address Off Size ...
      guard fields.count >= 5, let offset = Int(fields[3], radix: 16),
        let size = Int(fields[4], radix: 16), size > 0
      else { continue }
      return (offset, size)
    }
    throw TestFailure("\(binary) has no \(section)")
  }

  /// `maps` with every mapping of `binary` pointing at `replacement` (same addresses and offsets).
  static func maps(_ maps: ProcessMaps, replacing binary: String, with replacement: String) throws
    -> ProcessMaps
  {
    var status = stat()
    guard stat(replacement, &status) == 0 else { throw TestFailure("stat \(replacement) failed") }
    return ProcessMaps(
      pid: maps.pid,
      mappings: maps.mappings.map { mapping in
        guard mapping.path == binary else { return mapping }
        var moved = mapping
        moved.path = replacement
        moved.device = UInt64(status.st_dev)
        moved.inode = UInt64(status.st_ino)
        return moved
      })
  }
}

/// A seedable generator, so a failing mutation can be reproduced.
struct SplitMix {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9e37_79b9_7f4a_7c15
    var z = state
    z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
    z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
    return z ^ (z >> 31)
  }
}
