/// One unwinding step through Go code, by the pcsp table: no frame pointers, no CFI needed.
///
/// At a pc whose SP delta is d, the return address is at sp + d and the caller's SP is sp + d + 8.
/// Go functions with a frame save the caller's BP right below the return address, at callerSP - 16;
/// assembly that then uses BP as a scratch register (crypto/sha256.block) does not break the walk.
enum GoStep {
  /// `linkPC` is `frame.lookupPC` translated to the binary's link-time addresses.
  static func step(
    _ frame: FrameRegisters, linkPC: UInt64, table: GoPCLNTable, memory: StackMemory
  ) -> RuntimeStep {
    let function: GoFunction
    let delta: Int32
    do {
      guard let found = try table.function(at: linkPC) else {
        return .stop(
          .corruptTables, detail: "no Go function at 0x\(String(frame.lookupPC, radix: 16))")
      }
      function = found
      if function.isTopFrame { return .outermost }
      // Go's traceback ends at a function that switched stacks (its pcsp says nothing of the caller),
      // except in the innermost frame, where the switch may not have happened yet.
      if function.isSPWrite && frame.pcIsReturnAddress { return .outermost }
      delta = try table.spDelta(of: function, at: linkPC)
    } catch {
      return .stop(.corruptTables, detail: error.description)
    }
    guard delta >= 0, frame.sp <= UInt64.max - UInt64(delta) - 16 else {
      return .stop(.corruptTables, detail: "\(function.name): SP delta \(delta)")
    }
    let returnSlot = frame.sp + UInt64(delta)
    guard let returnAddress = memory.load(returnSlot) else {
      return memory.isBeyondCopy(returnSlot)
        ? .stop(.copyTooShort, detail: "\(function.name): return address beyond the stack copy")
        : .stop(.readError, detail: "\(function.name): return address outside the stack copy")
    }
    guard returnAddress != 0 else { return .outermost }
    let callerSP = returnSlot + 8
    var callerBP = frame.bp
    if delta >= 8 && !isBeforeBPSave(frame, linkPC: linkPC, function: function, table: table) {
      guard let saved = memory.load(callerSP - 16) else {
        return memory.isBeyondCopy(callerSP - 16)
          ? .stop(.copyTooShort, detail: "\(function.name): saved BP beyond the stack copy")
          : .stop(.readError, detail: "\(function.name): saved BP outside the stack copy")
      }
      callerBP = saved == 0 ? nil : saved
    }
    return .caller(
      FrameRegisters(pc: returnAddress, sp: callerSP, bp: callerBP, pcIsReturnAddress: true))
  }

  /// Whether the leaf frame stands at the first instruction of an allocated frame, where BP still holds
  /// the caller's value. Go 1.19 allocates with `SUBQ $n, SP` and saves BP on the next instruction;
  /// later Go pushes BP first, where BP is also still the caller's after the push.
  static func isBeforeBPSave(
    _ frame: FrameRegisters, linkPC: UInt64, function: GoFunction, table: GoPCLNTable
  ) -> Bool {
    guard !frame.pcIsReturnAddress else { return false }
    return (try? table.frameAllocationPC(of: function)) == linkPC
  }
}
