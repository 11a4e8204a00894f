/// The x86-64 frame-pointer rule, `push rbp; mov rbp, rsp`: the caller's rbp is saved at [rbp] and the
/// return address at [rbp + 8], so the caller's stack pointer is rbp + 16. JITs that keep frame pointers
/// (V8, HotSpot with -XX:+PreserveFramePointer) and code built with -fno-omit-frame-pointer follow it.
public enum FramePointerStep {
  /// One step up the rbp chain from `frame`. `unchainedReason` is what to report when `frame` has no
  /// usable frame pointer (the caller knows whether the code had CFI, a perf map, and so on).
  public static func step(
    _ frame: FrameRegisters, memory: StackMemory, unchainedReason: StackStopReason
  ) -> RuntimeStep {
    // A frame pointer below the stack pointer, or misaligned, is a register in other use, not a chain.
    guard let bp = frame.bp, bp >= frame.sp, bp & 7 == 0, bp < UInt64.max - 16 else {
      return .stop(unchainedReason, detail: "no frame pointer chain")
    }
    guard let savedBP = memory.load(bp), let returnAddress = memory.load(bp + 8) else {
      if memory.isBeyondCopy(bp + 8) {
        return .stop(.copyTooShort, detail: "the frame pointer leads beyond the stack copy")
      }
      return .stop(.readError, detail: "the saved frame pointer could not be read")
    }
    // Thread entry points zero rbp (or the return address) so that walks end there.
    guard returnAddress != 0 else { return .outermost }
    let callerSP = bp + 16
    return .caller(
      FrameRegisters(
        pc: returnAddress, sp: callerSP, bp: savedBP == 0 ? nil : savedBP, pcIsReturnAddress: true))
  }
}
