#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A file write that failed: the step, the path and the errno, so that a full disk (ENOSPC, EDQUOT) can
/// be told from every other failure.
public struct AtomicFileError: Error, CustomStringConvertible, Sendable, Equatable {
  /// "create", "write", "flush", "close" or "rename".
  public var step: String
  public var path: String
  public var errno: Int32

  public init(step: String, path: String, errno: Int32) {
    self.step = step
    self.path = path
    self.errno = errno
  }

  public var isDiskFull: Bool { errno == ENOSPC || errno == EDQUOT }
  public var reason: String { String(cString: strerror(errno)) }
  public var description: String { "cannot \(step) \(path): \(reason) (errno \(errno))" }
}

/// Writes files so that a reader sees either the old file or the complete new one, never a partial write:
/// the bytes go to a new temporary file in the same directory (same filesystem, so the rename is atomic),
/// are flushed to disk (unless asked not to), and only then renamed over the target. A failure at any
/// step removes the temporary file; a crash can leave one behind, named `.<name>.<pid>.<random>.tmp`,
/// which `removeTemporaryFiles` clears.
public enum AtomicFile {
  public static let temporarySuffix = ".tmp"

  /// `permissions` apply to a new file; 0o600 for what only the writer should read. `flush` waits for the
  /// bytes to reach the disk before the rename, so a power loss cannot leave an empty file in place; a
  /// writer that only needs to survive its own crash (the page cache outlives the process) skips that wait.
  public static func write(
    _ bytes: [UInt8], to path: String, permissions: UInt32 = 0o644, flush: Bool = true
  ) throws(AtomicFileError) {
    let temporary = try createTemporarySibling(of: path, permissions: permissions)
    var failure: AtomicFileError?
    bytes.withUnsafeBytes { buffer in
      var offset = 0
      while offset < buffer.count {
        let written = systemWrite(temporary.fd, buffer.baseAddress! + offset, buffer.count - offset)
        if written < 0 {
          if errno == EINTR { continue }
          failure = AtomicFileError(step: "write", path: temporary.path, errno: errno)
          return
        }
        offset += written
      }
    }
    if failure == nil && flush && fsync(temporary.fd) != 0 {
      failure = AtomicFileError(step: "flush", path: temporary.path, errno: errno)
    }
    if close(temporary.fd) != 0 && failure == nil {
      failure = AtomicFileError(step: "close", path: temporary.path, errno: errno)
    }
    if failure == nil && rename(temporary.path, path) != 0 {
      failure = AtomicFileError(step: "rename", path: path, errno: errno)
    }
    if let failure {
      unlink(temporary.path)
      throw failure
    }
  }

  /// Proves the directory accepts new files by creating and removing one, which catches read-only mounts,
  /// permissions and full disks of inodes that a permission check alone would miss (root passes `access`).
  public static func probeWritable(directoryOf path: String) throws(AtomicFileError) {
    let temporary = try createTemporarySibling(of: path, permissions: 0o600)
    close(temporary.fd)
    unlink(temporary.path)
  }

  /// Unlinks every `*.tmp` directly under `directory` (what crashes mid-write left); returns how many.
  public static func removeTemporaryFiles(in directory: String) -> Int {
    guard let stream = opendir(directory) else { return 0 }
    defer { closedir(stream) }
    var names: [String] = []
    while let entry = readdir(stream) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
      }
      if name.hasSuffix(temporarySuffix) { names.append(name) }
    }
    return names.filter { unlink("\(directory)/\($0)") == 0 }.count
  }

  public static func directory(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    let directory = String(path[..<slash])
    return directory.isEmpty ? "/" : directory
  }

  public static func fileName(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return path }
    return String(path[path.index(after: slash)...])
  }

  private static func createTemporarySibling(of path: String, permissions: UInt32)
    throws(AtomicFileError) -> (fd: Int32, path: String)
  {
    let directory = directory(of: path)
    var lastFailure = AtomicFileError(step: "create", path: directory, errno: EEXIST)
    for _ in 0..<8 {
      let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
      let candidate = "\(directory)/.\(fileName(of: path)).\(getpid()).\(suffix)\(temporarySuffix)"
      let fd = open(candidate, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(permissions))
      if fd >= 0 { return (fd, candidate) }
      lastFailure = AtomicFileError(step: "create", path: candidate, errno: errno)
      // Only a name collision is worth another try; anything else would fail the same way again.
      if lastFailure.errno != EEXIST { break }
    }
    throw lastFailure
  }

  private static func systemWrite(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
      Glibc.write(fd, bytes, count)
    #else
      Darwin.write(fd, bytes, count)
    #endif
  }
}
