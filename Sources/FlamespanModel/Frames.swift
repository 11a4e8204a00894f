/// One function in a symbolized address: a real call or one level of an inline chain.
public struct SourceFrame: Hashable, Sendable {
  /// Demangled name.
  public var function: String
  /// Name as it appears in the binary, when it differs from `function` (mangled).
  public var systemName: String?
  public var file: String?
  /// 0 when unknown.
  public var line: Int
  /// 0 when unknown.
  public var column: Int

  public init(
    function: String, systemName: String? = nil, file: String? = nil, line: Int = 0, column: Int = 0
  ) {
    self.function = function
    self.systemName = systemName
    self.file = file
    self.line = line
    self.column = column
  }
}

/// One address of a stack, resolved as far as it could be.
public struct ResolvedLocation: Hashable, Sendable {
  /// The address in the process (or kernel) when sampled.
  public var address: UInt64
  /// Where the address lies; nil only when no mapping covered it.
  public var mapping: Mapping?
  /// The inline chain, innermost first; the last entry is the real (outermost) function. Empty when unknown.
  public var frames: [SourceFrame]
  /// Why `frames` is empty, for people reading the profile: "no mapping", "[vdso]", "corrupt DWARF: …".
  public var unknownReason: String?
  /// The kind of code, when a runtime plug-in named it (Go, a JIT's perf map); nil for native code
  /// named by ELF/DWARF, and for the kernel, whose mapping already says so.
  public var frameType: FrameType?
  /// Code a JIT generated at run time, named from its perf map (`[jit]` in folded stacks).
  public var isJIT: Bool

  public init(
    address: UInt64, mapping: Mapping?, frames: [SourceFrame], unknownReason: String? = nil,
    frameType: FrameType? = nil, isJIT: Bool = false
  ) {
    self.address = address
    self.mapping = mapping
    self.frames = frames
    self.unknownReason = unknownReason
    self.frameType = frameType
    self.isJIT = isJIT
  }

  /// The name to show for this location when it has no frames: never a guessed function.
  public var displayName: String {
    if let outer = frames.last { return outer.function }
    if let mapping {
      switch mapping.kind {
      case .file, .deletedFile:
        let base = mapping.path.split(separator: "/").last.map(String.init) ?? mapping.path
        return "\(base)+0x\(String(mapping.fileOffset(of: address), radix: 16))"
      case .vdso: return "[vdso]"
      case .anonymous: return "[anon] 0x\(String(address, radix: 16))"
      case .special: return "\(mapping.path) 0x\(String(address, radix: 16))"
      case .kernel: return "[kernel] 0x\(String(address, radix: 16))"
      }
    }
    return "[unknown] 0x\(String(address, radix: 16))"
  }
}
