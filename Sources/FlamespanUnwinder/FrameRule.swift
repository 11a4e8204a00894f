/// How to find the caller's frame from a frame at one address: the canonical frame address (CFA) and where
/// each register of the caller was saved. DWARF 5 §6.4.1.
struct FrameRule: Sendable {
  enum CFA: Sendable, Equatable {
    case registerOffset(register: Int, offset: Int64)
    case expression([UInt8])
  }

  enum Register: Sendable, Equatable {
    case undefined
    case sameValue
    /// Saved at CFA + n.
    case offset(Int64)
    /// The value is CFA + n.
    case valueOffset(Int64)
    case register(Int)
    /// Saved at the address the expression computes.
    case expression([UInt8])
    case valueExpression([UInt8])
  }

  var cfa: CFA = .registerOffset(register: 7, offset: 8)
  /// Rules for registers 0...16 (x86-64 DWARF numbering: 6 rbp, 7 rsp, 16 return address); nil means "no
  /// rule", which for callee-saved registers means the value is unchanged.
  var registers: [Register?] = Array(repeating: nil, count: FrameRule.registerCount)
  var returnAddressRegister = 16
  var isSignalFrame = false

  static let registerCount = 17
}

/// Runs DW_CFA_* instructions up to a target address, keeping the remember/restore stack bounded.
struct CFAMachine {
  private let common: CallFrameInformation.CommonInformation
  private(set) var location: UInt64
  var rule = FrameRule()
  private var initialRule = FrameRule()
  private var remembered: [FrameRule] = []

  static let maximumRememberDepth = 64
  static let maximumInstructions = 100_000

  init(common: CallFrameInformation.CommonInformation, start: UInt64) {
    self.common = common
    self.location = start
    rule.returnAddressRegister = common.returnAddressRegister
    rule.isSignalFrame = common.isSignalFrame
  }

  private func checkedRegister(_ value: UInt64) throws(CFIError) -> Int {
    guard value < 128 else { throw CFIError("register number \(value) out of range") }
    return Int(value)
  }

  private mutating func set(_ register: Int, _ value: FrameRule.Register?) {
    // Registers we never track (vector, segment) are accepted and ignored.
    if register < FrameRule.registerCount { rule.registers[register] = value }
  }

  private mutating func advance(by delta: UInt64, target: UInt64) -> Bool {
    let (step, overflow) = delta.multipliedReportingOverflow(by: common.codeAlignment)
    let next = location &+ step
    if overflow || next > target || next < location {
      return false
    }
    location = next
    return true
  }

  /// Executes until the instruction stream ends or the location would pass `target`.
  mutating func run(_ program: ByteReader, until target: UInt64, isInitial: Bool = false)
    throws(CFIError)
  {
    defer { if isInitial { initialRule = rule } }
    var reader = program
    var executed = 0
    let dataAlignment = common.dataAlignment
    while !reader.isAtEnd {
      executed += 1
      guard executed < Self.maximumInstructions else { throw CFIError("CFI program too long") }
      let opcode = try reader.u8()
      let operand = UInt64(opcode & 0x3f)
      switch opcode >> 6 {
      case 1:  // DW_CFA_advance_loc
        guard advance(by: operand, target: target) else { return }
        continue
      case 2:  // DW_CFA_offset
        let register = try checkedRegister(operand)
        let factored = try reader.uleb128()
        set(register, .offset(Int64(bitPattern: factored) &* dataAlignment))
        continue
      case 3:  // DW_CFA_restore
        let register = try checkedRegister(operand)
        if register < FrameRule.registerCount { set(register, initialRule.registers[register]) }
        continue
      default: break
      }
      switch opcode {
      case 0x00: break  // nop
      case 0x01:  // set_loc
        let address = try reader.u64()
        guard address <= target else { return }
        location = address
      case 0x02: guard advance(by: UInt64(try reader.u8()), target: target) else { return }
      case 0x03: guard advance(by: UInt64(try reader.u16()), target: target) else { return }
      case 0x04: guard advance(by: UInt64(try reader.u32()), target: target) else { return }
      case 0x05:  // offset_extended
        let register = try checkedRegister(try reader.uleb128())
        set(register, .offset(Int64(bitPattern: try reader.uleb128()) &* dataAlignment))
      case 0x06:  // restore_extended
        let register = try checkedRegister(try reader.uleb128())
        if register < FrameRule.registerCount { set(register, initialRule.registers[register]) }
      case 0x07: set(try checkedRegister(try reader.uleb128()), .undefined)
      case 0x08: set(try checkedRegister(try reader.uleb128()), .sameValue)
      case 0x09:
        let register = try checkedRegister(try reader.uleb128())
        set(register, .register(try checkedRegister(try reader.uleb128())))
      case 0x0a:  // remember_state
        guard remembered.count < Self.maximumRememberDepth else {
          throw CFIError("remember_state nested too deep")
        }
        remembered.append(rule)
      case 0x0b:  // restore_state: the whole row, CFA included
        guard let saved = remembered.popLast() else {
          throw CFIError("restore_state without remember_state")
        }
        rule = saved
      case 0x0c:  // def_cfa
        let register = try checkedRegister(try reader.uleb128())
        rule.cfa = .registerOffset(
          register: register, offset: Int64(bitPattern: try reader.uleb128()))
      case 0x0d:  // def_cfa_register
        let register = try checkedRegister(try reader.uleb128())
        guard case .registerOffset(_, let offset) = rule.cfa else {
          throw CFIError("def_cfa_register after a CFA expression")
        }
        rule.cfa = .registerOffset(register: register, offset: offset)
      case 0x0e:  // def_cfa_offset
        let offset = Int64(bitPattern: try reader.uleb128())
        guard case .registerOffset(let register, _) = rule.cfa else {
          throw CFIError("def_cfa_offset after a CFA expression")
        }
        rule.cfa = .registerOffset(register: register, offset: offset)
      case 0x0f:  // def_cfa_expression
        let length = try reader.uleb128()
        guard length < 4096 else { throw CFIError("expression of \(length) bytes") }
        rule.cfa = .expression(try reader.block(Int(length)))
      case 0x10, 0x16:  // expression, val_expression
        let register = try checkedRegister(try reader.uleb128())
        let length = try reader.uleb128()
        guard length < 4096 else { throw CFIError("expression of \(length) bytes") }
        let expression = try reader.block(Int(length))
        set(register, opcode == 0x10 ? .expression(expression) : .valueExpression(expression))
      case 0x11:  // offset_extended_sf
        let register = try checkedRegister(try reader.uleb128())
        set(register, .offset(try reader.sleb128() &* dataAlignment))
      case 0x12:  // def_cfa_sf
        let register = try checkedRegister(try reader.uleb128())
        rule.cfa = .registerOffset(
          register: register, offset: try reader.sleb128() &* dataAlignment)
      case 0x13:  // def_cfa_offset_sf
        let offset = try reader.sleb128() &* dataAlignment
        guard case .registerOffset(let register, _) = rule.cfa else {
          throw CFIError("def_cfa_offset_sf after a CFA expression")
        }
        rule.cfa = .registerOffset(register: register, offset: offset)
      case 0x14:  // val_offset
        let register = try checkedRegister(try reader.uleb128())
        set(register, .valueOffset(Int64(bitPattern: try reader.uleb128()) &* dataAlignment))
      case 0x15:  // val_offset_sf
        let register = try checkedRegister(try reader.uleb128())
        set(register, .valueOffset(try reader.sleb128() &* dataAlignment))
      case 0x2e: _ = try reader.uleb128()  // GNU_args_size: only matters for exception landing pads
      case 0x2f:  // GNU_negative_offset_extended
        let register = try checkedRegister(try reader.uleb128())
        set(register, .offset(-(Int64(bitPattern: try reader.uleb128()) &* dataAlignment)))
      default:
        throw CFIError("unknown CFA instruction 0x\(String(opcode, radix: 16))")
      }
    }
  }
}
