#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// Gives back the resident pages of file mappings once they have been read. libelf reads a file (symbol
/// tables, DWARF) through a private mapping of it, and every page read stays in this process's RSS for as
/// long as the file is open: 7 MB for the symbol table of a `swift-frontend`, although that table is read
/// once, to build the sorted copy; megabytes of DWARF read for a handful of addresses. The pages are in the
/// page cache anyway, so reading them again costs a minor fault each.
enum MappedFilePages {
  /// Tables below this size are left alone: reading /proc/self/maps costs more than they hold.
  static let minimumBytes = 256 << 10

  /// One line of /proc/self/smaps with what decides whether its pages can be dropped without loss.
  struct Mapping {
    var range: Range<UInt>
    /// A private mapping of a file (inode not 0).
    var isPrivateFile: Bool
    /// Pages of the mapping that were written to and so exist only here (copy on write).
    var anonymousKiB: Int
    /// The mapped file, as the kernel names it (symbolic links resolved).
    var path: Substring?
    /// Code the dynamic loader mapped: its file is one of this process's own libraries.
    var isExecutable: Bool
  }

  /// Drops the whole pages inside `range` from this process's page tables where they lie in a private
  /// file mapping and still hold the file's bytes (a later read faults them back in from the page cache).
  /// Anything else, such as a copy libelf made in the heap or a page written in place, is left alone:
  /// there the same call would destroy data. Returns the bytes released.
  @discardableResult
  static func release(_ range: Range<UInt>, mappings: [Mapping]) -> Int {
    release(mappings.filter { $0.range.overlaps(range) }, within: range)
  }

  /// `release` over the parts of `candidates` inside `range`.
  static func release(_ candidates: [Mapping], within range: Range<UInt>) -> Int {
    let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
    var released = 0
    for mapping in candidates where mapping.isPrivateFile && mapping.range.overlaps(range) {
      let begin = (max(range.lowerBound, mapping.range.lowerBound) + page - 1) & ~(page - 1)
      let end = min(range.upperBound, mapping.range.upperBound) & ~(page - 1)
      guard end > begin else { continue }
      // A mapping with written pages (libdw writes a page now and then, into a debug file's mapping for
      // one) keeps those: only the runs of pages still backed by the file are dropped.
      let runs = mapping.anonymousKiB == 0 ? [begin..<end] : filePageRuns(begin..<end, page: page)
      for run in runs
      where madvise(
        UnsafeMutableRawPointer(bitPattern: run.lowerBound), Int(run.count), MADV_DONTNEED)
        == 0
      {
        released += Int(run.count)
      }
    }
    return released
  }

  /// The runs of resident pages in `range` that are still the file's (not copied on write), from
  /// /proc/self/pagemap: one 64-bit entry per page, bit 63 present, bit 61 file-backed or shared.
  static func filePageRuns(_ range: Range<UInt>, page: UInt) -> [Range<UInt>] {
    let descriptor = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { return [] }
    defer { close(descriptor) }
    let count = Int((range.upperBound - range.lowerBound) / page)
    var entries = [UInt64](repeating: 0, count: count)
    let wanted = count * MemoryLayout<UInt64>.size
    let read = entries.withUnsafeMutableBytes {
      pread(descriptor, $0.baseAddress, wanted, off_t(range.lowerBound / page) * 8)
    }
    guard read == wanted else { return [] }
    var runs: [Range<UInt>] = []
    var runStart: UInt? = nil
    for (index, entry) in entries.enumerated() {
      let address = range.lowerBound + UInt(index) * page
      let isFilePage = entry & (1 << 63) != 0 && entry & (1 << 61) != 0
      if isFilePage, runStart == nil { runStart = address }
      if !isFilePage, let start = runStart {
        runs.append(start..<address)
        runStart = nil
      }
    }
    if let start = runStart { runs.append(start..<range.upperBound) }
    return runs
  }

  /// `release` for one table just read, when it is big enough to be worth reading /proc/self/smaps.
  @discardableResult
  static func release(_ start: UnsafeMutableRawPointer?, count: Int) -> Int {
    guard let start, count >= minimumBytes else { return 0 }
    let low = UInt(bitPattern: start)
    return release(low..<(low + UInt(count)), mappings: mappings())
  }

  /// This process's mappings from /proc/self/smaps; empty when it cannot be read (then nothing is released).
  static func mappings() -> [Mapping] {
    guard let smaps = fopen("/proc/self/smaps", "r") else { return [] }
    defer { fclose(smaps) }
    var line: UnsafeMutablePointer<CChar>? = nil
    var capacity = 0
    defer { free(line) }
    var result: [Mapping] = []
    while getline(&line, &capacity, smaps) > 0, let line {
      let text = String(cString: line)
      if text.hasPrefix("Anonymous:"), !result.isEmpty {
        let value = text.dropFirst("Anonymous:".count).split(separator: " ").first
        // Unreadable: assume written, which keeps the mapping.
        result[result.count - 1].anonymousKiB = value.flatMap { Int($0) } ?? 1
        continue
      }
      // A mapping's first line: start-end perms offset dev inode [path]
      let fields = text.split(separator: " ", omittingEmptySubsequences: true)
      guard fields.count >= 5, fields[0].contains("-") else { continue }
      let bounds = fields[0].split(separator: "-")
      guard bounds.count == 2, let low = UInt(bounds[0], radix: 16),
        let high = UInt(bounds[1], radix: 16), low < high
      else { continue }
      let permissions = Array(fields[1].utf8)
      let isPrivate = permissions.count == 4 && permissions[3] == UInt8(ascii: "p")
      let isExecutable = permissions.count == 4 && permissions[2] == UInt8(ascii: "x")
      // The path is the rest of the line after the inode (it may hold spaces), without the newline.
      var path: Substring? = nil
      if fields.count >= 6 {
        path = text[fields[5].startIndex...].dropLast(text.hasSuffix("\n") ? 1 : 0)
      }
      result.append(
        Mapping(
          range: low..<high, isPrivateFile: isPrivate && fields[4] != "0", anonymousKiB: 1,
          path: path, isExecutable: isExecutable))
    }
    return result
  }
}
