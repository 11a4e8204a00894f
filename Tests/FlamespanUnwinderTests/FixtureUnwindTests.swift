import FlamespanModel
import FlamespanProcess
import FlamespanTestSupport
import FlamespanUnwinder
import Foundation
import Testing

/// Unwinds stacks that a fixture built without frame pointers captured of itself, and checks every frame.
@Suite struct FixtureUnwindTests {
  static let fixture = Result { try FixtureCapture.build() }

  /// Runs `binary` in `mode`, unwinds the stack it captured of itself, and names the frames.
  static func unwindCapture(of binary: String, mode: String) throws -> (UnwoundStack, [String]) {
    let capture = try FixtureCapture.run(binary, mode: mode)
    let unwound = Unwinder().unwind(
      registers: capture.registers, stack: capture.stack, stackStart: capture.registers.sp,
      maps: capture.maps)
    return (unwound, capture.names(unwound))
  }

  @Test func deepCallChainReachesMainAndTheEndOfTheStack() throws {
    let (unwound, names) = try Self.unwindCapture(of: try Self.fixture.get(), mode: "deep")
    #expect(unwound.end == .reachedEnd, "\(unwound.end.description): \(names)")
    // capture_here may be inlined into level_three by the compiler; level_three onwards is ours.
    let ours = Array(names.drop { $0 == "capture_here" })
    #expect(
      Array(ours.prefix(4)) == ["level_three", "level_two", "level_one", "main"], "\(names)")
    // Below main: glibc's start code, then the executable's _start, where the CFI marks the end.
    #expect(names.last == "_start", "\(names)")
    #expect(names.contains("libc.so.6"), "\(names)")
  }

  @Test func qsortCallbackUnwindsThroughLibcWithoutFramePointers() throws {
    let (unwound, names) = try Self.unwindCapture(of: try Self.fixture.get(), mode: "qsort")
    #expect(unwound.end == .reachedEnd, "\(unwound.end.description): \(names)")
    let ours = Array(names.drop { $0 == "capture_here" })
    #expect(
      Array(ours.prefix(4)) == ["level_three", "level_two", "level_one", "compare_ints"],
      "\(names)")
    // compare_ints is called by libc's sorting code, which has no frame pointers, and that by main.
    guard let compare = names.firstIndex(of: "compare_ints"),
      let main = names.firstIndex(of: "main")
    else {
      Issue.record("no compare_ints or main in \(names)")
      return
    }
    #expect(main > compare + 1)
    #expect(names[(compare + 1)..<main].allSatisfy { $0 == "libc.so.6" }, "\(names)")
    #expect(names.last == "_start")
  }

  @Test func signalHandlerUnwindsThroughTheSignalFrame() throws {
    let (unwound, names) = try Self.unwindCapture(of: try Self.fixture.get(), mode: "signal")
    #expect(unwound.end == .reachedEnd, "\(unwound.end.description): \(names)")
    // handler → libc's __restore_rt (signal frame) → raise's internals in libc → raise_signal → main.
    guard let handler = names.firstIndex(of: "on_signal"),
      let raiser = names.firstIndex(of: "raise_signal")
    else {
      Issue.record("handler or raise_signal missing in \(names)")
      return
    }
    #expect(handler < raiser)
    #expect(names[(handler + 1)..<raiser].allSatisfy { $0 == "libc.so.6" }, "\(names)")
    #expect(names[raiser + 1] == "main", "\(names)")
    #expect(names.last == "_start")
  }

  @Test func aStackCopyTooShortIsMarkedTruncatedWithoutInventedFrames() throws {
    let capture = try FixtureCapture.run(try Self.fixture.get(), mode: "qsort")
    let unwinder = Unwinder()
    let full = unwinder.unwind(
      registers: capture.registers, stack: capture.stack, stackStart: capture.registers.sp,
      maps: capture.maps)
    for size in [0, 8, 64, 200, 512, 1024] where size < capture.stack.count {
      let short = unwinder.unwind(
        registers: capture.registers, stack: Array(capture.stack.prefix(size)),
        stackStart: capture.registers.sp, maps: capture.maps)
      guard case .truncated = short.end else {
        Issue.record("a \(size)-byte copy ended with \(short.end.description)")
        continue
      }
      // Every frame it did produce is a real one: a prefix of the full unwind.
      #expect(full.addresses.starts(with: short.addresses), "\(size) bytes")
      #expect(short.addresses.count < full.addresses.count)
    }
  }

  @Test func anonymousCodeStopsWithAnExplicitUnknownFrame() throws {
    let capture = try FixtureCapture.run(try Self.fixture.get(), mode: "deep")
    let unwinder = Unwinder()
    let full = unwinder.unwind(
      registers: capture.registers, stack: capture.stack, stackStart: capture.registers.sp,
      maps: capture.maps)
    let names = capture.names(full)
    guard let firstLibc = names.firstIndex(of: "libc.so.6") else {
      Issue.record("no libc frame in \(names)")
      return
    }
    // Pretend libc's code is JIT output: the unwind must stop at its first frame and say so.
    let libcAddress = full.addresses[firstLibc]
    let jitMaps = ProcessMaps(
      pid: 0,
      mappings: capture.maps.mappings.map { mapping in
        guard mapping.contains(libcAddress - 1) else { return mapping }
        var anonymous = mapping
        anonymous.kind = .anonymous
        anonymous.path = "[anon]"
        return anonymous
      })
    let stopped = unwinder.unwind(
      registers: capture.registers, stack: capture.stack, stackStart: capture.registers.sp,
      maps: jitMaps)
    #expect(stopped.addresses == Array(full.addresses.prefix(firstLibc + 1)))
    guard case .unknownCode(let address, let reason) = stopped.end else {
      Issue.record("ended with \(stopped.end.description)")
      return
    }
    #expect(address == libcAddress)
    #expect(reason.contains("anonymous"))
  }

  @Test func debugFrameAloneIsEnough() throws {
    // No .eh_frame: the compiler puts the CFI in .debug_frame only.
    let binary = try FixtureCapture.build(flags: [
      "-O2", "-g", "-fomit-frame-pointer", "-fno-asynchronous-unwind-tables", "-fno-unwind-tables",
    ])
    let sections = try Run.command(["readelf", "-SW", binary]).stdout
    #expect(sections.contains(".debug_frame"))
    let (unwound, names) = try Self.unwindCapture(of: binary, mode: "deep")
    let ours = Array(names.drop { $0 == "capture_here" })
    #expect(
      Array(ours.prefix(4)) == ["level_three", "level_two", "level_one", "main"],
      "\(unwound.end.description): \(names)")
  }

  @Test func ehFrameWithoutASearchTableIsIndexedInFull() throws {
    let binary = try FixtureCapture.build(flags: [
      "-O2", "-g", "-fomit-frame-pointer", "-Wl,--no-eh-frame-hdr",
    ])
    let sections = try Run.command(["readelf", "-SW", binary]).stdout
    #expect(!sections.contains(".eh_frame_hdr"))
    let (unwound, names) = try Self.unwindCapture(of: binary, mode: "deep")
    let ours = Array(names.drop { $0 == "capture_here" })
    #expect(
      Array(ours.prefix(4)) == ["level_three", "level_two", "level_one", "main"],
      "\(unwound.end.description): \(names)")
  }
}
