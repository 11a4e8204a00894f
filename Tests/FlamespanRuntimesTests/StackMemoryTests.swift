import FlamespanRuntimes
import Testing

@Suite struct StackMemoryTests {
  @Test func loadsLittleEndianWordsInsideTheCopyOnly() {
    let bytes: [UInt8] = [1, 0, 0, 0, 0, 0, 0, 0, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]
    let memory = StackMemory(start: 0x1000, bytes: bytes)
    #expect(memory.load(0x1000) == 1)
    #expect(memory.load(0x1008) == 0x1122_3344_5566_7788)
    #expect(memory.load(0x1009) == nil)
    #expect(memory.load(0xff8) == nil)
    #expect(memory.load(.max) == nil)
    #expect(memory.isBeyondCopy(0x1009))
    #expect(!memory.isBeyondCopy(0x1008))
  }

  @Test func returnAddressesAreLookedUpOnTheCall() {
    let leaf = FrameRegisters(pc: 0x2000, sp: 0, bp: nil, pcIsReturnAddress: false)
    let caller = FrameRegisters(pc: 0x2000, sp: 0, bp: nil, pcIsReturnAddress: true)
    #expect(leaf.lookupPC == 0x2000)
    #expect(caller.lookupPC == 0x1fff)
  }
}

@Suite struct FramePointerStepTests {
  /// A stack laid out as `push rbp; mov rbp, rsp` leaves it: [saved rbp][return address].
  static func words(_ values: [UInt64]) -> [UInt8] {
    values.flatMap { value in (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
  }

  @Test func followsTheChainAndEndsAtAZeroReturnAddress() {
    // sp = 0x1000; frame at 0x1010: saved rbp 0x1030, return 0x4444; frame at 0x1030: saved 0, return 0.
    let memory = StackMemory(
      start: 0x1000, bytes: Self.words([0, 0, 0x1030, 0x4444, 0, 0, 0, 0]))
    let leaf = FrameRegisters(pc: 0x5555, sp: 0x1000, bp: 0x1010, pcIsReturnAddress: false)
    let first = FramePointerStep.step(leaf, memory: memory, unchainedReason: .noCFI)
    #expect(
      first == .caller(FrameRegisters(pc: 0x4444, sp: 0x1020, bp: 0x1030, pcIsReturnAddress: true)))
    guard case .caller(let caller) = first else { return }
    #expect(FramePointerStep.step(caller, memory: memory, unchainedReason: .noCFI) == .outermost)
  }

  @Test func saysWhyWhenThereIsNoChain() {
    let memory = StackMemory(start: 0x1000, bytes: Self.words([0, 0]))
    let below = FrameRegisters(pc: 1, sp: 0x1000, bp: 0x800, pcIsReturnAddress: false)
    #expect(
      FramePointerStep.step(below, memory: memory, unchainedReason: .jitWithoutMap)
        == .stop(.jitWithoutMap, detail: "no frame pointer chain"))
    let beyond = FrameRegisters(pc: 1, sp: 0x1000, bp: 0x1008, pcIsReturnAddress: false)
    guard
      case .stop(let reason, _) = FramePointerStep.step(
        beyond, memory: memory, unchainedReason: .noCFI)
    else {
      Issue.record("expected a stop")
      return
    }
    #expect(reason == .copyTooShort)
  }
}
