import FlamespanModel
import FlamespanProcess
import FlamespanRuntimes
import FlamespanUnwinder
import Testing

/// The unwinder's order of rules on synthetic stacks: a runtime that owns the code first, then (in auto
/// mode) frame pointers through code without CFI, and never a frame from an address no code is at.
@Suite struct RuntimeDispatchTests {
  static let jit = Mapping(
    start: 0x10000, limit: 0x20000, fileOffset: 0, path: "[anon]", kind: .anonymous)
  static let maps = ProcessMaps(pid: 1, mappings: [jit])

  /// Owns [0x30000, 0x31000) and steps as a Go-like runtime would: the return address at [sp + 8].
  final class FakeRuntime: RuntimeProcess {
    let runtimeName = "fake"
    var steps = 0
    func owns(pc: UInt64, mapping: Mapping?) -> Bool { (0x30000..<0x31000).contains(pc) }
    func step(_ frame: FrameRegisters, memory: StackMemory) -> RuntimeStep {
      steps += 1
      guard let returnAddress = memory.load(frame.sp + 8) else {
        return .stop(.copyTooShort, detail: "fake")
      }
      return .caller(
        FrameRegisters(pc: returnAddress, sp: frame.sp + 16, bp: frame.bp, pcIsReturnAddress: true))
    }
    func symbolize(address: UInt64, mapping: Mapping?) -> RuntimeSymbol? { nil }
  }

  static func words(_ values: [UInt64]) -> [UInt8] {
    values.flatMap { value in (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
  }

  @Test func aRuntimeStepsItsCodeThenFramePointersCarryThroughJITCode() {
    // sp 0x7000: [junk][return into JIT 0x10010]; then the JIT frame: rbp = 0x7010 → [0][return 0].
    let stack = Self.words([0xdead, 0x10010, 0, 0])
    let runtime = FakeRuntime()
    let unwound = Unwinder().unwind(
      registers: UserRegisters(ip: 0x30010, sp: 0x7000, bp: 0x7010), stack: stack,
      stackStart: 0x7000, maps: Self.maps, runtimes: [runtime], framePointerFallback: true)
    #expect(runtime.steps == 1)
    #expect(unwound.addresses == [0x30010, 0x10010])
    #expect(unwound.end == .reachedEnd, "\(unwound.end.description)")
  }

  @Test func withoutTheFallbackJITCodeEndsTheStackAsBefore() {
    let stack = Self.words([0xdead, 0x10010, 0, 0])
    let unwound = Unwinder().unwind(
      registers: UserRegisters(ip: 0x30010, sp: 0x7000, bp: 0x7010), stack: stack,
      stackStart: 0x7000, maps: Self.maps, runtimes: [FakeRuntime()], framePointerFallback: false)
    #expect(unwound.addresses == [0x30010, 0x10010])
    guard case .unknownCode(_, let reason) = unwound.end else {
      Issue.record("ended with \(unwound.end.description)")
      return
    }
    #expect(reason.contains("anonymous"))
    #expect(unwound.end.stopReason == .jitWithoutMap)
  }

  @Test func aFramePointerThatLeadsNowhereAddsNoFrame() {
    // The JIT leaf's rbp points at a "return address" 0x999999 that no mapping or runtime covers.
    let stack = Self.words([0x7010, 0x999999])
    let unwound = Unwinder().unwind(
      registers: UserRegisters(ip: 0x10020, sp: 0x7000, bp: 0x7000), stack: stack,
      stackStart: 0x7000, maps: Self.maps, framePointerFallback: true)
    #expect(unwound.addresses == [0x10020])
    #expect(unwound.end.stopReason == .jitWithoutMap, "\(unwound.end.description)")
  }

  @Test func aChainBeyondTheCopyIsCountedAsACopyTooShort() {
    let stack = Self.words([0, 0])
    let unwound = Unwinder().unwind(
      registers: UserRegisters(ip: 0x10020, sp: 0x7000, bp: 0x7008), stack: stack,
      stackStart: 0x7000, maps: Self.maps, framePointerFallback: true)
    #expect(unwound.addresses == [0x10020])
    #expect(unwound.end.stopReason == .copyTooShort, "\(unwound.end.description)")
  }

  @Test func aCallerBelowItsCalleeIsRefused() {
    final class Backwards: RuntimeProcess {
      let runtimeName = "backwards"
      func owns(pc: UInt64, mapping: Mapping?) -> Bool { true }
      func step(_ frame: FrameRegisters, memory: StackMemory) -> RuntimeStep {
        .caller(FrameRegisters(pc: 0x30000, sp: frame.sp - 8, bp: nil, pcIsReturnAddress: true))
      }
      func symbolize(address: UInt64, mapping: Mapping?) -> RuntimeSymbol? { nil }
    }
    let unwound = Unwinder().unwind(
      registers: UserRegisters(ip: 0x30010, sp: 0x7000, bp: 0), stack: Self.words([0]),
      stackStart: 0x7000, maps: Self.maps, runtimes: [Backwards()], framePointerFallback: true)
    #expect(unwound.addresses == [0x30010])
    #expect(unwound.end.stopReason == .corruptTables)
  }
}
