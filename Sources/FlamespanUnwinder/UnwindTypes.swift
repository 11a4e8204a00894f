import FlamespanRuntimes

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
  /// A runtime plug-in or the frame-pointer rule could not go on from the code at `address`.
  case stopped(StackStopReason, address: UInt64, detail: String)

  /// The summary's category for a stack that stopped early; nil for a complete one.
  public var stopReason: StackStopReason? {
    switch self {
    case .reachedEnd: return nil
    case .truncated(let reason):
      return reason.contains("beyond") ? .copyTooShort : .readError
    case .unknownCode(_, let reason):
      return reason.hasPrefix("anonymous") || reason == Self.noMappingReason
        ? .jitWithoutMap : .noCFI
    case .corruptCFI: return .corruptTables
    case .frameLimit: return .frameLimit
    case .stopped(let reason, _, _): return reason
    }
  }

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
    case .stopped(let reason, let address, let detail):
      return "\(reason.rawValue) at 0x\(String(address, radix: 16)): \(detail)"
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
