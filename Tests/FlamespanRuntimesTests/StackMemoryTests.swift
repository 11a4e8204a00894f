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
