#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// An incremental reader of one perf map file (`/tmp/perf-PID.map`), which a JIT appends to while it
/// runs.
///
/// `refresh()` stats the file and reads only the bytes appended since the last call, keeping a trailing
/// line the writer has not finished for the next call; an unchanged file costs one `stat`. A file that
/// shrank or was replaced (another inode: the process restarted under the same pid, or the JIT rewrote
/// its map) is read again from the start. A file that disappears keeps what was read: the process may
/// have exited with its samples still to be named. (A file truncated and rewritten past the old size
/// between two refreshes, under the same inode, is not noticed; JITs append or write a new file.)
///
/// Lines that do not parse are counted in `badLines` and skipped; entries past `maxEntries` are counted
/// in `droppedEntries`. Lookup is O(log n); where ranges overlap, the entry read last wins.
public final class PerfMap {
  /// The default cap on entries: at ~40 bytes plus the name each, about 200 MB at worst.
  public static let defaultMaxEntries = 2_000_000
  /// A line longer than this is not a perf map line; it is skipped as bad without being kept.
  static let maxLineLength = 64 * 1024
  static let readChunk = 1 << 20

  public let path: String
  private var index: PerfMapIndex
  /// Bytes of the file consumed so far (complete lines plus the partial line kept below).
  public private(set) var offset: UInt64 = 0
  private var partial: [UInt8] = []
  /// True while skipping the rest of an over-long line.
  private var discardingLine = false
  private var device: UInt64 = 0
  private var inode: UInt64 = 0
  private var opened = false

  /// Lines that were not `START SIZE name` with a sensible range.
  public private(set) var badLines = 0
  /// Times the file was found shorter or replaced and read again from the start.
  public private(set) var restarts = 0

  public init(path: String, maxEntries: Int = PerfMap.defaultMaxEntries) {
    self.path = path
    self.index = PerfMapIndex(maxEntries: maxEntries)
  }

  /// Entries held (after the cap).
  public var entryCount: Int { index.count }
  /// Entries refused because `maxEntries` was reached.
  public var droppedEntries: Int { index.droppedEntries }

  /// Whether the file exists now.
  public var fileExists: Bool {
    var info = stat()
    return stat(path, &info) == 0
  }

  /// Catches up with what the writer appended. Returns whether anything new was read.
  @discardableResult
  public func refresh() -> Bool {
    var info = stat()
    guard stat(path, &info) == 0 else { return false }
    let size = UInt64(max(0, info.st_size))
    let fileDevice = UInt64(info.st_dev)
    let fileInode = UInt64(info.st_ino)
    if opened, fileDevice == device, fileInode == inode, size == offset { return false }
    if opened, fileDevice != device || fileInode != inode || size < offset {
      restart()
    }
    opened = true
    device = fileDevice
    inode = fileInode
    guard size > offset else { return false }
    return readAppended()
  }

  /// The name of the code at `address`, or nil when no entry covers it.
  public func name(at address: UInt64) -> String? {
    guard let entry = index.entryIndex(at: address) else { return nil }
    return index.name(ofEntry: entry)
  }

  /// Whether an entry covers `address`.
  public func covers(_ address: UInt64) -> Bool { index.entryIndex(at: address) != nil }

  /// The code range of the entry visible at `address`.
  public func range(at address: UInt64) -> Range<UInt64>? {
    guard let entry = index.entryIndex(at: address) else { return nil }
    return index.entries[entry].start..<index.entries[entry].end
  }

  /// Feeds bytes as if they had been read from the file: for tests, and for maps that arrive another
  /// way. A trailing line without a newline is kept until the rest arrives.
  public func consume(_ bytes: UnsafeBufferPointer<UInt8>) {
    var lineStart = 0
    var cursor = 0
    let count = bytes.count
    while cursor < count {
      guard let newline = Self.findNewline(bytes, from: cursor) else { break }
      let line = UnsafeBufferPointer(rebasing: bytes[lineStart..<newline])
      if discardingLine {
        discardingLine = false
      } else if partial.isEmpty {
        parseLine(line)
      } else {
        partial.append(contentsOf: line)
        if partial.count > Self.maxLineLength {
          badLines += 1
        } else {
          partial.withUnsafeBufferPointer { parseLine($0) }
        }
        partial.removeAll(keepingCapacity: true)
      }
      cursor = newline + 1
      lineStart = cursor
    }
    guard lineStart < count, !discardingLine else { return }
    partial.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[lineStart..<count]))
    if partial.count > Self.maxLineLength {
      badLines += 1
      partial.removeAll(keepingCapacity: false)
      discardingLine = true
    }
  }

  public func consume(_ bytes: [UInt8]) {
    bytes.withUnsafeBufferPointer { consume($0) }
  }

  /// Parses whatever partial line is held as if the writer had ended it: for a file the JIT closed
  /// without a final newline.
  public func finishPartialLine() {
    guard !partial.isEmpty else { return }
    partial.withUnsafeBufferPointer { parseLine($0) }
    partial.removeAll()
  }

  /// The visible segments, for tests.
  func visibleSegments() -> [PerfMapIndex.Segment] { index.visibleSegments() }

  private func restart() {
    index.removeAll()
    offset = 0
    partial.removeAll()
    discardingLine = false
    badLines = 0
    restarts += 1
  }

  private func readAppended() -> Bool {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { return false }
    defer { close(descriptor) }
    var buffer = [UInt8](repeating: 0, count: Self.readChunk)
    var readAny = false
    while true {
      let got = buffer.withUnsafeMutableBytes { raw in
        pread(descriptor, raw.baseAddress, raw.count, off_t(offset))
      }
      if got < 0, errno == EINTR { continue }
      guard got > 0 else { break }
      readAny = true
      offset += UInt64(got)
      buffer.withUnsafeBufferPointer { consume(UnsafeBufferPointer(rebasing: $0[0..<got])) }
      if got < buffer.count { break }
    }
    return readAny
  }

  private func parseLine(_ line: UnsafeBufferPointer<UInt8>) {
    guard line.count <= Self.maxLineLength else {
      badLines += 1
      return
    }
    switch PerfMapLine.parse(line) {
    case .entry(let start, let size, let name):
      index.append(start: start, size: size, name: UnsafeBufferPointer(rebasing: line[name]))
    case .blank: break
    case .bad: badLines += 1
    }
  }

  private static func findNewline(_ bytes: UnsafeBufferPointer<UInt8>, from: Int) -> Int? {
    guard from < bytes.count, let base = bytes.baseAddress else { return nil }
    guard let found = memchr(base + from, 0x0A, bytes.count - from) else { return nil }
    return base.distance(to: found.assumingMemoryBound(to: UInt8.self))
  }
}
