import FlamespanModel

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// Reads what /proc says about a process: its executable mappings, thread names and executable.
public enum ProcessInspector {
  /// Reads /proc/PID/maps and fills in the build id of every file-backed mapping.
  public static func readMaps(pid: Int32) throws(ProcessError) -> ProcessMaps {
    try readMaps(pid: pid, buildIDCache: nil)
  }

  /// As `readMaps(pid:)`, reading each file's build id at most once per `buildIDCache`.
  public static func readMaps(pid: Int32, buildIDCache: BuildIDCache?) throws(ProcessError)
    -> ProcessMaps
  {
    let path = "/proc/\(pid)/maps"
    let bytes = try FileAccess.readAll(path: path, pid: pid)
    let parsed = MapsParser.parse(String(decoding: bytes, as: UTF8.self), pid: pid)
    let cache = buildIDCache ?? BuildIDCache()
    let mappings = parsed.mappings.map { mapping in
      guard mapping.kind == .file || mapping.kind == .deletedFile else { return mapping }
      var filled = mapping
      filled.buildID = cache.buildID(for: mapping, pid: pid)
      return filled
    }
    return ProcessMaps(pid: pid, mappings: mappings)
  }

  /// Parses maps text without touching the file system: no build ids are filled in.
  public static func parseMaps(_ text: String, pid: Int32) -> ProcessMaps {
    MapsParser.parse(text, pid: pid)
  }

  /// The thread's name (`comm`), or nil if the thread is gone.
  public static func threadName(pid: Int32, tid: Int32) -> String? {
    guard
      let bytes = try? FileAccess.readAll(
        path: "/proc/\(pid)/task/\(tid)/comm", pid: pid, limit: 4096)
    else { return nil }
    var name = String(decoding: bytes, as: UTF8.self)
    if name.hasSuffix("\n") { name.removeLast() }
    return name
  }

  /// Where the process's executable is, as the kernel names it (may end in " (deleted)").
  public static func executablePath(pid: Int32) -> String? {
    FileAccess.readLink(path: "/proc/\(pid)/exe")
  }

  /// Every living descendant of `pids` (children, their children, …), from the parent pid in each
  /// /proc/PID/stat; `pids` themselves are not included.
  public static func descendants(of pids: [Int32]) -> [Int32] {
    var children: [Int32: [Int32]] = [:]
    guard let directory = opendir("/proc") else { return [] }
    defer { closedir(directory) }
    while let entry = readdir(directory) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
      }
      guard let pid = Int32(name), pid > 0, let parent = parentPid(pid: pid) else { continue }
      children[parent, default: []].append(pid)
    }
    var found: [Int32] = []
    var seen = Set(pids)
    var pending = pids
    while let pid = pending.popLast() {
      for child in children[pid] ?? [] where seen.insert(child).inserted {
        found.append(child)
        pending.append(child)
      }
    }
    return found
  }

  /// The fourth field of /proc/PID/stat, after the command name in parentheses (which may hold spaces
  /// and parentheses of its own, so the last ")" ends it).
  public static func parentPid(pid: Int32) -> Int32? {
    guard let bytes = try? FileAccess.readAll(path: "/proc/\(pid)/stat", pid: pid, limit: 4096),
      let close = bytes.lastIndex(of: UInt8(ascii: ")"))
    else { return nil }
    let fields = bytes[(close + 1)...].split(separator: UInt8(ascii: " "))
    guard fields.count >= 2 else { return nil }
    return Int32(String(decoding: fields[1], as: UTF8.self))
  }

  public static func exists(pid: Int32) -> Bool {
    guard pid > 0 else { return false }
    // EPERM means the process exists but belongs to someone we may not signal.
    return kill(pid, 0) == 0 || errno == EPERM
  }

  /// Nanoseconds of CLOCK_MONOTONIC, the clock of `bpf_ktime_get_ns`, so sample times compare with snapshot times.
  public static func monotonicNanos() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
  }
}
