#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The few /proc files the perf-map plug-in reads, read with plain system calls.
public enum ProcFiles {
  /// The pid that process `pid` has in its own (innermost) pid namespace: the last value of `NSpid:` in
  /// /proc/PID/status. A JIT names its map with the pid it sees, so a process in a container writes
  /// perf-1.map while the host knows it as 4242. `pid` itself when the kernel has no NSpid line.
  public static func namespacePID(of pid: Int32) -> Int32? {
    guard let status = readText("/proc/\(pid)/status") else { return nil }
    return namespacePID(status: status) ?? pid
  }

  /// The last NSpid value in the text of a status file, or nil when it has none.
  public static func namespacePID(status: String) -> Int32? {
    for line in status.split(separator: "\n") where line.hasPrefix("NSpid:") {
      let values = line.dropFirst("NSpid:".count).split(whereSeparator: { $0 == "\t" || $0 == " " })
      guard let last = values.last else { return nil }
      return Int32(last)
    }
    return nil
  }

  /// Where process `pid`'s perf map is, seen through its root so that a map inside another mount
  /// namespace (a container's /tmp) is found too.
  public static func perfMapPath(pid: Int32, namespacePID: Int32) -> String {
    "/proc/\(pid)/root/tmp/perf-\(namespacePID).map"
  }

  /// The file name of the process's executable, without a " (deleted)" mark.
  public static func executableName(of pid: Int32) -> String? {
    var buffer = [CChar](repeating: 0, count: 4096)
    let length = readlink("/proc/\(pid)/exe", &buffer, buffer.count - 1)
    guard length > 0 else { return nil }
    var path = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    if path.hasSuffix(" (deleted)") { path.removeLast(" (deleted)".count) }
    return path.split(separator: "/").last.map(String.init)
  }

  /// A small text file read whole (a /proc file reports size 0, so read until end).
  static func readText(_ path: String) -> String? {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { return nil }
    defer { close(descriptor) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
      let got = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
      if got < 0, errno == EINTR { continue }
      guard got > 0 else { break }
      bytes.append(contentsOf: chunk[0..<got])
    }
    return String(decoding: bytes, as: UTF8.self)
  }
}
