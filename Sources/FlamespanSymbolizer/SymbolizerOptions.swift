/// How a `Symbolizer` finds separate debug information and how much it keeps in memory.
public struct SymbolizerOptions: Sendable {
  /// Roots searched for separate debug files: `ROOT/.build-id/xx/rest.debug` by build id, then
  /// `ROOT/<binary's directory>/<debuglink name>` by `.gnu_debuglink`. The binary's own directory and its
  /// `.debug/` subdirectory are always searched for the debuglink name.
  public var debugDirectories: [String]
  /// How many parsed files stay cached; the least recently used one is dropped past this bound.
  public var maxCachedFiles: Int

  public init(debugDirectories: [String] = ["/usr/lib/debug"], maxCachedFiles: Int = 64) {
    self.debugDirectories = debugDirectories
    self.maxCachedFiles = max(1, maxCachedFiles)
  }
}

/// Counters that show whether the cache does its job: one parse per file, many hits per parse.
public struct SymbolizerStatistics: Sendable, Hashable {
  public var cacheHits: Int = 0
  public var cacheMisses: Int = 0
  /// Files opened and indexed (successfully or not).
  public var filesParsed: Int = 0
  /// Files dropped from the cache to respect `maxCachedFiles`.
  public var evictions: Int = 0
  public var addressesResolved: Int = 0
  public var addressesUnknown: Int = 0

  public init() {}
}
