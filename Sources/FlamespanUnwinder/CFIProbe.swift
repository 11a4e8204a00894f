/// The CFI reader's whole path on one ELF image, from its section headers to a frame rule at chosen
/// addresses, with no process behind it. It is what the CFI fuzz target drives (Fuzz/Targets/CFI), so
/// the parser is reached through one narrow entry point rather than by opening its types to the package.
package enum CFIProbe {
  /// What one probe found; the counts are for checking that an input got somewhere.
  package struct Summary: Sendable, Equatable {
    /// FDEs indexed from sections held in memory (`.debug_frame`, `.eh_frame` without a search table).
    package var entries = 0
    /// Entries that could not be indexed.
    package var skippedEntries = 0
    /// Addresses at which a rule was computed.
    package var rules = 0
    /// Addresses at which the CFI was found corrupt.
    package var failures = 0
  }

  /// Reads an ELF file through `read(offset, count)` (exactly `count` bytes, or nil), indexes its CFI,
  /// and computes the rule at the first, middle and last byte of up to `maximumEntries` indexed entries
  /// and at each of `addresses`. Nil when the file is not a readable ELF file.
  package static func evaluate(
    read: @escaping (UInt64, Int) -> [UInt8]?, addresses: [UInt64] = [], maximumEntries: Int = 32
  ) -> Summary? {
    guard let sections = try? ELFSections(read: read) else { return nil }
    let information = CallFrameInformation(sections: sections, read: read)
    var summary = Summary(
      entries: information.entries.count, skippedEntries: information.skippedEntries)
    var probes = addresses
    for entry in information.entries.prefix(maximumEntries) {
      probes += [entry.begin, entry.begin + (entry.end - entry.begin) / 2, entry.end - 1]
    }
    for address in probes {
      do {
        if try information.rule(at: address) != nil { summary.rules += 1 }
      } catch {
        summary.failures += 1
      }
    }
    return summary
  }
}
