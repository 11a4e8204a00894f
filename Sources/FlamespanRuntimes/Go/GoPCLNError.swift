/// Why a `.gopclntab` (or one lookup in it) could not be read. Corrupt or foreign bytes end up here,
/// never in a crash: every read of the table is bounds-checked.
public struct GoPCLNError: Error, Sendable, Hashable, CustomStringConvertible {
  public enum Kind: Sendable, Hashable {
    /// A layout this reader does not decode (Go before 1.18), or not a pclntab at all.
    case unsupportedVersion
    /// A read would run past the end of the table.
    case truncated
    /// Bytes that exist but contradict the layout: unsorted entries, endless tables, bad offsets.
    case malformed
  }

  public var kind: Kind
  /// What was being read, and what was wrong with it.
  public var reason: String

  public init(_ kind: Kind, _ reason: String) {
    self.kind = kind
    self.reason = reason
  }

  public var description: String { "gopclntab: \(reason)" }
}
