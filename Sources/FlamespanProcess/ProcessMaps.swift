import FlamespanModel

/// The executable ranges of one process at one moment, sorted by start address.
public struct ProcessMaps: Sendable {
  public let pid: Int32
  /// Executable ranges only, sorted by `start`, non-overlapping as the kernel reports them.
  public let mappings: [Mapping]

  public init(pid: Int32, mappings: [Mapping]) {
    self.pid = pid
    self.mappings = mappings.sorted { $0.start < $1.start }
  }

  /// The mapping covering `address`, found by binary search.
  public func mapping(containing address: UInt64) -> Mapping? {
    var low = 0
    var high = mappings.count
    // Find the first mapping that starts after `address`; the one before it is the only candidate.
    while low < high {
      let middle = (low + high) / 2
      if mappings[middle].start <= address {
        low = middle + 1
      } else {
        high = middle
      }
    }
    guard low > 0 else { return nil }
    let candidate = mappings[low - 1]
    return candidate.contains(address) ? candidate : nil
  }
}

/// Parses the text of /proc/PID/maps. Lines it cannot understand are skipped rather than failing the whole
/// process, because one odd line must not cost every sample of that process its symbols.
enum MapsParser {
  static func parse(_ text: String, pid: Int32) -> ProcessMaps {
    var mappings: [Mapping] = []
    for line in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
      if let mapping = parseLine(Array(line)) { mappings.append(mapping) }
    }
    return ProcessMaps(pid: pid, mappings: mappings)
  }

  /// `start-limit perms offset major:minor inode   path`; the path is the rest of the line and may hold spaces.
  static func parseLine(_ line: [UInt8]) -> Mapping? {
    var cursor = 0
    func nextField() -> ArraySlice<UInt8>? {
      while cursor < line.count, line[cursor] == UInt8(ascii: " ") { cursor += 1 }
      let begin = cursor
      while cursor < line.count, line[cursor] != UInt8(ascii: " ") { cursor += 1 }
      return begin < cursor ? line[begin..<cursor] : nil
    }
    guard let range = nextField(), let permissions = nextField(), let offsetField = nextField(),
      let deviceField = nextField(), let inodeField = nextField()
    else { return nil }

    guard permissions.count >= 3 else { return nil }
    guard permissions[permissions.startIndex + 2] == UInt8(ascii: "x") else { return nil }

    guard let dash = range.firstIndex(of: UInt8(ascii: "-")),
      let start = parseHex(range[range.startIndex..<dash]),
      let limit = parseHex(range[(dash + 1)...]),
      start < limit,
      let fileOffset = parseHex(offsetField),
      let colon = deviceField.firstIndex(of: UInt8(ascii: ":")),
      let major = parseHex(deviceField[deviceField.startIndex..<colon]),
      let minor = parseHex(deviceField[(colon + 1)...]),
      let inode = parseDecimal(inodeField)
    else { return nil }

    while cursor < line.count, line[cursor] == UInt8(ascii: " ") { cursor += 1 }
    let rawPath = String(decoding: line[cursor...], as: UTF8.self)
    let (path, kind) = classify(rawPath)
    return Mapping(
      start: start, limit: limit, fileOffset: fileOffset, path: path, kind: kind,
      device: makeDevice(major: major, minor: minor), inode: inode)
  }

  private static let deletedSuffix = " (deleted)"

  /// Decides what backs a range from its maps path, and returns the path to keep.
  static func classify(_ rawPath: String) -> (path: String, kind: MappingKind) {
    if rawPath.isEmpty { return ("[anon]", .anonymous) }
    if rawPath.hasPrefix("[") {
      if rawPath == "[vdso]" { return (rawPath, .vdso) }
      // "[anon:name]" (prctl PR_SET_VMA_ANON_NAME) and "[anon_shmem:name]" are named anonymous memory.
      if rawPath.hasPrefix("[anon") { return (rawPath, .anonymous) }
      return (rawPath, .special)
    }
    var path = rawPath
    var deleted = false
    if path.hasSuffix(deletedSuffix) {
      path = String(path.dropLast(deletedSuffix.count))
      deleted = true
    }
    // memfd and shared-anonymous (/dev/zero, SysV shm) memory has a path but no file to read symbols from:
    // JITs write code there.
    if path.hasPrefix("/memfd:") || path.hasPrefix("memfd:") || path.hasPrefix("//anon")
      || path == "/dev/zero" || path.hasPrefix("/SYSV")
    {
      return (path, .anonymous)
    }
    return (path, deleted ? .deletedFile : .file)
  }

  /// The same encoding as glibc's `makedev`, so the value equals `stat().st_dev` of the mapped file.
  static func makeDevice(major: UInt64, minor: UInt64) -> UInt64 {
    ((major & 0xffff_f000) << 32) | ((major & 0xfff) << 8) | ((minor & 0xffff_ff00) << 12)
      | (minor & 0xff)
  }

  private static func parseHex(_ digits: ArraySlice<UInt8>) -> UInt64? {
    guard !digits.isEmpty, digits.count <= 16 else { return nil }
    var value: UInt64 = 0
    for digit in digits {
      let nibble: UInt8
      switch digit {
      case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = digit - UInt8(ascii: "0")
      case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = digit - UInt8(ascii: "a") + 10
      case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = digit - UInt8(ascii: "A") + 10
      default: return nil
      }
      value = value << 4 | UInt64(nibble)
    }
    return value
  }

  private static func parseDecimal(_ digits: ArraySlice<UInt8>) -> UInt64? {
    guard !digits.isEmpty else { return nil }
    var value: UInt64 = 0
    for digit in digits {
      guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { return nil }
      let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
      let (sum, overflow2) = times10.addingReportingOverflow(UInt64(digit - UInt8(ascii: "0")))
      guard !overflow1, !overflow2 else { return nil }
      value = sum
    }
    return value
  }
}
