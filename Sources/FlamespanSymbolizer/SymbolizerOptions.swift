/// How a `Symbolizer` finds separate debug information and how much it keeps in memory.
public struct SymbolizerOptions: Sendable {
  /// Roots searched for separate debug files: `ROOT/.build-id/xx/rest.debug` by build id, then
  /// `ROOT/<binary's directory>/<debuglink name>` by `.gnu_debuglink`. The binary's own directory and its
  /// `.debug/` subdirectory are always searched for the debuglink name.
  public var debugDirectories: [String]
  /// How many parsed files stay cached; the least recently used one is dropped past this bound.
  public var maxCachedFiles: Int
  /// Estimated bytes the cached files may hold (their tables, name caches and the mapped file pages those
  /// were read from); nil: bounded by count only. A file just parsed stays while it is being used even when
  /// it alone is over the budget; `Symbolizer.trimToMemoryBudget()` then drops it too.
  public var maxCachedBytes: Int?

  public init(
    debugDirectories: [String] = ["/usr/lib/debug"], maxCachedFiles: Int = 64,
    maxCachedBytes: Int? = nil
  ) {
    self.debugDirectories = debugDirectories
    self.maxCachedFiles = max(1, maxCachedFiles)
    self.maxCachedBytes = maxCachedBytes.map { max(0, $0) }
  }
}

/// Counters that show whether the cache does its job: one parse per file, many hits per parse.
public struct SymbolizerStatistics: Sendable, Hashable {
  public var cacheHits: Int = 0
  public var cacheMisses: Int = 0
  /// Files opened and indexed (successfully or not).
  public var filesParsed: Int = 0
  /// Files dropped from the cache to respect `maxCachedFiles` or `maxCachedBytes`.
  public var evictions: Int = 0
  /// Estimated bytes the cached files hold now (a gauge, unlike the counters).
  public var cachedBytes: Int = 0
  public var addressesResolved: Int = 0
  public var addressesUnknown: Int = 0

  public init() {}
}
