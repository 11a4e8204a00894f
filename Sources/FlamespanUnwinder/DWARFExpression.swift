/// A small DWARF expression evaluator: enough for the CFA expressions compilers and glibc emit (PLT stubs,
/// signal trampolines, stack realignment). Memory reads go through `load`, which sees only the stack copy.
struct DWARFExpression {
  enum Failure: Error {
    case unknownRegister(Int)
    case unreadable(UInt64)
    case malformed(String)
  }

  static let maximumSteps = 1000

  /// Evaluates `bytes` with `initial` pushed first (DWARF pushes the CFA for register-rule expressions).
  static func evaluate(
    _ bytes: [UInt8], initial: UInt64? = nil, register: (Int) -> UInt64?, load: (UInt64) -> UInt64?
  ) throws(Failure) -> UInt64 {
    var stack: [UInt64] = []
    if let initial { stack.append(initial) }
    var reader = ByteReader(bytes)
    var steps = 0
    func pop() throws(Failure) -> UInt64 {
      guard let value = stack.popLast() else { throw .malformed("expression stack underflow") }
      return value
    }
    func operand<T>(_ read: (inout ByteReader) throws(CFIError) -> T) throws(Failure) -> T {
      do { return try read(&reader) } catch { throw .malformed(error.reason) }
    }
    while !reader.isAtEnd {
      steps += 1
      guard steps < maximumSteps, stack.count < 64 else { throw .malformed("expression too long") }
      let opcode = try operand { (r) throws(CFIError) in try r.u8() }
      switch opcode {
      case 0x30...0x4f: stack.append(UInt64(opcode - 0x30))  // lit0..lit31
      case 0x50...0x6f:  // reg0..reg31
        let number = Int(opcode - 0x50)
        guard let value = register(number) else { throw .unknownRegister(number) }
        stack.append(value)
      case 0x70...0x8f:  // breg0..breg31
        let number = Int(opcode - 0x70)
        let offset = try operand { (r) throws(CFIError) in try r.sleb128() }
        guard let value = register(number) else { throw .unknownRegister(number) }
        stack.append(value &+ UInt64(bitPattern: offset))
      case 0x92:  // bregx
        let number = try operand { (r) throws(CFIError) in try r.uleb128() }
        let offset = try operand { (r) throws(CFIError) in try r.sleb128() }
        guard number < 128, let value = register(Int(number)) else {
          throw .unknownRegister(Int(min(number, 9999)))
        }
        stack.append(value &+ UInt64(bitPattern: offset))
      case 0x08: stack.append(UInt64(try operand { (r) throws(CFIError) in try r.u8() }))
      case 0x09:
        stack.append(
          UInt64(
            bitPattern: Int64(Int8(bitPattern: try operand { (r) throws(CFIError) in try r.u8() })))
        )
      case 0x0a: stack.append(UInt64(try operand { (r) throws(CFIError) in try r.u16() }))
      case 0x0b:
        stack.append(
          UInt64(
            bitPattern: Int64(
              Int16(bitPattern: try operand { (r) throws(CFIError) in try r.u16() }))))
      case 0x0c: stack.append(UInt64(try operand { (r) throws(CFIError) in try r.u32() }))
      case 0x0d:
        stack.append(
          UInt64(
            bitPattern: Int64(
              Int32(bitPattern: try operand { (r) throws(CFIError) in try r.u32() }))))
      case 0x0e, 0x0f: stack.append(try operand { (r) throws(CFIError) in try r.u64() })
      case 0x10: stack.append(try operand { (r) throws(CFIError) in try r.uleb128() })
      case 0x11:
        stack.append(UInt64(bitPattern: try operand { (r) throws(CFIError) in try r.sleb128() }))
      case 0x12:  // dup
        let top = try pop()
        stack.append(top)
        stack.append(top)
      case 0x13: _ = try pop()  // drop
      case 0x14:  // over
        guard stack.count >= 2 else { throw .malformed("over needs two values") }
        stack.append(stack[stack.count - 2])
      case 0x16:  // swap
        let top = try pop()
        let below = try pop()
        stack.append(top)
        stack.append(below)
      case 0x06:  // deref
        let address = try pop()
        guard let value = load(address) else { throw .unreadable(address) }
        stack.append(value)
      case 0x23:  // plus_uconst
        let addend = try operand { (r) throws(CFIError) in try r.uleb128() }
        stack.append(try pop() &+ addend)
      case 0x1a, 0x1c, 0x1e, 0x21, 0x22, 0x24, 0x25, 0x26, 0x27, 0x29...0x2e:
        let right = try pop()
        let left = try pop()
        stack.append(try binary(opcode, left, right))
      case 0x1f: stack.append(0 &- (try pop()))  // neg
      case 0x20: stack.append(~(try pop()))  // not
      case 0x96: break  // nop
      default:
        throw .malformed("unsupported DWARF operation 0x\(String(opcode, radix: 16))")
      }
    }
    return try pop()
  }

  private static func binary(_ opcode: UInt8, _ left: UInt64, _ right: UInt64) throws(Failure)
    -> UInt64
  {
    let signedLeft = Int64(bitPattern: left)
    let signedRight = Int64(bitPattern: right)
    switch opcode {
    case 0x1a: return left & right
    case 0x1c: return left &- right
    case 0x1e: return left &* right
    case 0x21: return left | right
    case 0x22: return left &+ right
    case 0x24: return right >= 64 ? 0 : left << right
    case 0x25: return right >= 64 ? 0 : left >> right
    case 0x26:
      return UInt64(bitPattern: right >= 64 ? (signedLeft < 0 ? -1 : 0) : signedLeft >> right)
    case 0x27: return left ^ right
    case 0x29: return signedLeft == signedRight ? 1 : 0
    case 0x2a: return signedLeft >= signedRight ? 1 : 0
    case 0x2b: return signedLeft > signedRight ? 1 : 0
    case 0x2c: return signedLeft <= signedRight ? 1 : 0
    case 0x2d: return signedLeft < signedRight ? 1 : 0
    case 0x2e: return signedLeft != signedRight ? 1 : 0
    default: throw .malformed("unsupported DWARF operation 0x\(String(opcode, radix: 16))")
    }
  }
}
