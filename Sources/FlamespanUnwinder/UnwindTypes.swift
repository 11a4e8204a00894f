/// Why an unwind stopped. Only `reachedEnd` means the stack is complete; every other case says what is
/// missing, so a profile can show it instead of inventing frames.
public enum UnwindEnd: Sendable, Hashable {
  /// The outermost frame (its CFI marks the return address undefined, or the return address is 0).
  case reachedEnd
  /// The next frame lies beyond the copied part of the stack.
  case truncated(reason: String)
  /// Code we have no CFI for: JIT or anonymous memory, an unreadable file, an address with no FDE.
  case unknownCode(address: UInt64, reason: String)
  /// The CFI for this address exists but cannot be used (corrupt bytes, impossible rules).
  case corruptCFI(address: UInt64, reason: String)
  /// `maxFrames` frames were produced before the end.
  case frameLimit

  /// The `unknownCode` reason for an address outside every executable mapping (often a library mapped
  /// after the maps snapshot was read).
  public static let noMappingReason = "address is in no executable mapping"

  /// A short human-readable description for profile markers.
  public var description: String {
    switch self {
    case .reachedEnd: return "complete"
    case .truncated(let reason): return "truncated: \(reason)"
    case .unknownCode(let address, let reason):
      return "unknown code at 0x\(String(address, radix: 16)): \(reason)"
    case .corruptCFI(let address, let reason):
      return "corrupt CFI at 0x\(String(address, radix: 16)): \(reason)"
    case .frameLimit: return "frame limit reached"
    }
  }
}

public struct UnwoundStack: Sendable, Hashable {
  /// Leaf first: the sampled instruction, then return addresses (or, after a signal frame, the
  /// interrupted instruction).
  public var addresses: [UInt64]
  public var end: UnwindEnd

  public init(addresses: [UInt64], end: UnwindEnd) {
    self.addresses = addresses
    self.end = end
  }
}

/// Counters that say how much work the caches saved.
public struct UnwinderStatistics: Sendable, Equatable {
  public var stacksUnwound = 0
  public var framesProduced = 0
  public var filesParsed = 0
  public var filesEvicted = 0
  public var ruleCacheHits = 0
  public var ruleCacheMisses = 0
  /// FDEs skipped while indexing because their bytes were corrupt.
  public var corruptEntriesSkipped = 0

  public init() {}
}
