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
