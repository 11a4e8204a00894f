import FlamespanModel
import FlamespanProcess
import FlamespanRuntimes

/// Unwinds a copied user stack with the DWARF call frame information (`.eh_frame`, `.debug_frame`) of the
/// files mapped at each return address. It never reads process memory: every load comes from the copy,
/// so a stack deeper than the copy ends as `truncated`, never with an invented frame.
///
/// Not thread-safe: one unwinder per thread (the recorder unwinds on its event loop).
public final class Unwinder {
  private let cache: CFICache

  /// `fileCapacity` bounds the parsed files kept (each holds its CFI sections and up to 8192 cached rules).
  public init(fileCapacity: Int = 64) {
    cache = CFICache(capacity: fileCapacity)
  }

  public var statistics: UnwinderStatistics { cache.statistics }
  public var cachedFiles: Int { cache.count }

  private enum Register {
    static let framePointer = 6
    static let stackPointer = 7
    static let returnAddress = 16
  }

  /// Unwinds from `registers` through `stack`, the bytes copied from `stackStart` (the stack pointer) up,
  /// using the executable mappings in `maps` to find each frame's file.
  ///
  /// Each frame's code is first offered to `runtimes` (Go's tables, a JIT's perf map): the one that owns
  /// it takes the step. Other code is unwound with its file's DWARF CFI; with `framePointerFallback`,
  /// code that has none (JIT output, binaries without CFI) is stepped over on the frame-pointer chain,
  /// as long as that chain leads back into executable memory.
  public func unwind(
    registers: UserRegisters, stack: [UInt8], stackStart: UInt64, maps: ProcessMaps,
    runtimes: [any RuntimeProcess] = [], framePointerFallback: Bool = false, maxFrames: Int = 127
  ) -> UnwoundStack {
    cache.statistics.stacksUnwound += 1
    var values = [UInt64?](repeating: nil, count: FrameRule.registerCount)
    values[Register.returnAddress] = registers.ip
    values[Register.stackPointer] = registers.sp
    values[Register.framePointer] = registers.bp
    var addresses: [UInt64] = [registers.ip]
    var pcIsReturnAddress = false
    let stackEnd = stackStart &+ UInt64(stack.count)

    var lastMissedLoad: UInt64?
    var lostBeyondCopy = [Bool](repeating: false, count: FrameRule.registerCount)
    func load(_ address: UInt64) -> UInt64? {
      guard address >= stackStart, address <= stackEnd, stackEnd - address >= 8 else {
        lastMissedLoad = address
        return nil
      }
      let offset = Int(address - stackStart)
      var value: UInt64 = 0
      for index in (0..<8).reversed() { value = value << 8 | UInt64(stack[offset + index]) }
      return value
    }
    func missingStack(_ address: UInt64?) -> UnwindEnd {
      guard let address else { return .truncated(reason: "a saved register could not be read") }
      if address &+ 8 > stackEnd {
        return .truncated(
          reason: "the caller's frame is beyond the \(stack.count)-byte stack copy")
      }
      return .truncated(reason: "a saved register lies below the stack pointer")
    }

    func finish(_ end: UnwindEnd) -> UnwoundStack {
      cache.statistics.framesProduced += addresses.count
      return UnwoundStack(addresses: addresses, end: end)
    }

    let memory = StackMemory(start: stackStart, bytes: stack)
    /// Takes one step that a runtime or the frame-pointer rule computed; nil when the walk goes on.
    func take(_ step: RuntimeStep, at pc: UInt64) -> UnwoundStack? {
      switch step {
      case .outermost:
        return finish(.reachedEnd)
      case .stop(let reason, let detail):
        return finish(.stopped(reason, address: pc, detail: detail))
      case .caller(let caller):
        guard caller.sp > (values[Register.stackPointer] ?? 0) else {
          return finish(
            .stopped(
              .corruptTables, address: pc, detail: "the caller's frame is not above its callee's"))
        }
        guard addresses.count < maxFrames else { return finish(.frameLimit) }
        // Only the registers the step recovered are known in the caller.
        values = [UInt64?](repeating: nil, count: FrameRule.registerCount)
        values[Register.returnAddress] = caller.pc
        values[Register.stackPointer] = caller.sp
        values[Register.framePointer] = caller.bp
        lostBeyondCopy = [Bool](repeating: false, count: FrameRule.registerCount)
        addresses.append(caller.pc)
        pcIsReturnAddress = caller.pcIsReturnAddress
        return nil
      }
    }
    func currentFrame(_ pc: UInt64) -> FrameRegisters {
      FrameRegisters(
        pc: pc, sp: values[Register.stackPointer] ?? 0, bp: values[Register.framePointer],
        pcIsReturnAddress: pcIsReturnAddress)
    }
    /// Code without CFI: the frame-pointer chain, if allowed and if it leads back into known code.
    func fallBack(_ end: UnwindEnd, pc: UInt64, mapping: Mapping?) -> UnwoundStack? {
      guard framePointerFallback else { return finish(end) }
      let reason: StackStopReason =
        mapping == nil || mapping?.kind == .anonymous ? .jitWithoutMap : .noCFI
      let step = FramePointerStep.step(currentFrame(pc), memory: memory, unchainedReason: reason)
      // Code in no mapping at all is more often a library mapped after the snapshot than JIT code:
      // keep the end that makes the caller read the maps again.
      if case .stop = step, mapping == nil { return finish(end) }
      if case .caller(let caller) = step {
        let callerLookup = caller.pc &- 1
        let callerMapping = maps.mapping(containing: callerLookup)
        let known =
          callerMapping != nil || runtimes.contains { $0.owns(pc: callerLookup, mapping: nil) }
        // A return address in no mapping means the "frame pointer" was a register in other use.
        guard known else {
          return finish(
            .stopped(reason, address: pc, detail: "the frame pointer chain leads nowhere"))
        }
      }
      return take(step, at: pc)
    }

    while true {
      guard let pc = values[Register.returnAddress] else { return finish(.reachedEnd) }
      // A return address points after the call; the call itself (pc-1) is what lies in the caller's FDE,
      // which matters when the call was the function's last instruction.
      let lookup = pcIsReturnAddress ? pc &- 1 : pc
      let mapping = maps.mapping(containing: lookup)
      if let owner = runtimes.first(where: { $0.owns(pc: lookup, mapping: mapping) }) {
        if let done = take(owner.step(currentFrame(pc), memory: memory), at: pc) { return done }
        continue
      }
      guard let mapping else {
        if let done = fallBack(
          .unknownCode(address: pc, reason: UnwindEnd.noMappingReason), pc: pc, mapping: nil)
        {
          return done
        }
        continue
      }
      switch mapping.kind {
      case .anonymous:
        if let done = fallBack(
          .unknownCode(address: pc, reason: "anonymous executable memory (JIT or generated code)"),
          pc: pc, mapping: mapping)
        {
          return done
        }
        continue
      case .special, .kernel:
        return finish(.unknownCode(address: pc, reason: "special mapping \(mapping.path)"))
      case .file, .deletedFile, .vdso: break
      }
      let loaded = cache.cfi(for: mapping, pid: maps.pid)
      if let failure = loaded.failure {
        if let done = fallBack(.unknownCode(address: pc, reason: failure), pc: pc, mapping: mapping)
        {
          return done
        }
        continue
      }
      guard let information = loaded.information,
        let linkAddress = information.sections.virtualAddress(
          ofFileOffset: mapping.fileOffset(of: lookup))
      else {
        return finish(
          .unknownCode(address: pc, reason: "\(mapping.path): no loadable segment covers it"))
      }
      let rule: FrameRule
      switch cache.rule(in: loaded, at: linkAddress) {
      case .failure(let error):
        return finish(.corruptCFI(address: pc, reason: "\(mapping.path): \(error.reason)"))
      case .success(nil):
        if let done = fallBack(
          .unknownCode(address: pc, reason: "no CFI covers this address in \(mapping.path)"),
          pc: pc, mapping: mapping)
        {
          return done
        }
        continue
      case .success(let found?):
        rule = found
      }

      // The canonical frame address: the caller's stack pointer before the call.
      let cfa: UInt64
      switch rule.cfa {
      case .registerOffset(let register, let offset):
        guard register < values.count, let base = values[register] else {
          // A register lost because its save slot lay beyond the copy is truncation, not unknown code.
          if register < lostBeyondCopy.count, lostBeyondCopy[register] {
            return finish(missingStack(stackEnd))
          }
          return finish(
            .unknownCode(
              address: pc, reason: "CFA is based on register \(register), which is not recovered"))
        }
        cfa = base &+ UInt64(bitPattern: offset)
      case .expression(let bytes):
        do {
          cfa = try DWARFExpression.evaluate(
            bytes, register: { $0 < values.count ? values[$0] : nil }, load: load)
        } catch {
          switch error {
          case .unreadable(let address): return finish(missingStack(address))
          case .unknownRegister(let register):
            return finish(
              .unknownCode(
                address: pc, reason: "CFA expression needs register \(register), not recovered"))
          case .malformed(let reason):
            return finish(.corruptCFI(address: pc, reason: "\(mapping.path): \(reason)"))
          }
        }
      }

      var next = values
      var nextLostBeyondCopy = lostBeyondCopy
      next[Register.stackPointer] = cfa
      for register in 0..<FrameRule.registerCount {
        guard let registerRule = rule.registers[register] else { continue }
        switch registerRule {
        case .undefined: next[register] = nil
        case .sameValue: next[register] = values[register]
        case .offset(let offset):
          lastMissedLoad = nil
          next[register] = load(cfa &+ UInt64(bitPattern: offset))
          if next[register] == nil, register == rule.returnAddressRegister || register == 7 {
            return finish(missingStack(lastMissedLoad))
          }
          nextLostBeyondCopy[register] =
            next[register] == nil && (lastMissedLoad ?? 0) &+ 8 > stackEnd
        case .valueOffset(let offset): next[register] = cfa &+ UInt64(bitPattern: offset)
        case .register(let source): next[register] = source < values.count ? values[source] : nil
        case .expression(let bytes), .valueExpression(let bytes):
          do {
            let value = try DWARFExpression.evaluate(
              bytes, initial: cfa, register: { $0 < values.count ? values[$0] : nil }, load: load)
            if case .valueExpression = registerRule {
              next[register] = value
            } else {
              lastMissedLoad = nil
              next[register] = load(value)
              if next[register] == nil, register == rule.returnAddressRegister || register == 7 {
                return finish(missingStack(lastMissedLoad))
              }
            }
          } catch {
            if case .malformed(let reason) = error {
              return finish(.corruptCFI(address: pc, reason: "\(mapping.path): \(reason)"))
            }
            next[register] = nil
            if register == rule.returnAddressRegister {
              return finish(.truncated(reason: "the return address could not be recovered"))
            }
          }
        }
      }
      if rule.returnAddressRegister != Register.returnAddress {
        guard rule.returnAddressRegister < next.count else {
          return finish(.corruptCFI(address: pc, reason: "return address register out of range"))
        }
        next[Register.returnAddress] = next[rule.returnAddressRegister]
      } else if rule.registers[Register.returnAddress] == nil {
        return finish(.corruptCFI(address: pc, reason: "\(mapping.path): no return address rule"))
      }
      guard let returnAddress = next[Register.returnAddress], returnAddress != 0 else {
        return finish(.reachedEnd)
      }
      // The stack only grows down: a caller's frame below its callee's means the rules are wrong, and
      // following them could loop.
      guard let newSP = next[Register.stackPointer], let oldSP = values[Register.stackPointer],
        newSP > oldSP || (rule.isSignalFrame && newSP != oldSP)
      else {
        return finish(
          .corruptCFI(address: pc, reason: "\(mapping.path): the CFA does not move up the stack"))
      }
      guard addresses.count < maxFrames else { return finish(.frameLimit) }
      addresses.append(returnAddress)
      pcIsReturnAddress = !rule.isSignalFrame
      values = next
      lostBeyondCopy = nextLostBeyondCopy
    }
  }
}
