/// The user-mode registers a DWARF unwind starts from (x86-64): instruction, stack and frame pointer.
/// The sampler captures them and the unwinder consumes them, so both speak this one type.
public struct UserRegisters: Sendable, Hashable {
  public var ip: UInt64
  public var sp: UInt64
  public var bp: UInt64

  public init(ip: UInt64, sp: UInt64, bp: UInt64) {
    self.ip = ip
    self.sp = sp
    self.bp = bp
  }
}
