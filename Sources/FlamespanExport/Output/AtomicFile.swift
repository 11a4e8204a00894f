/// Writes files so that a reader sees either the old file or the complete new one, never a partial write:
/// the bytes go to a temporary file in the same directory (same filesystem, so rename is atomic) first.
enum AtomicFile {
  static func write(_ bytes: [UInt8], to path: String) throws(ExportError) {
    let temporary = try createTemporarySibling(of: path)
    var failure: ExportError?
    if let code = SystemCalls.writeAll(temporary.fd, bytes) {
      failure = ExportError(
        code: .writeFailed, path: path, errno: code, message: "cannot write \(bytes.count) bytes")
    } else if let code = SystemCalls.sync(temporary.fd) {
      failure = ExportError(
        code: .writeFailed, path: path, errno: code, message: "cannot flush to disk")
    }
    if let code = SystemCalls.close(temporary.fd), failure == nil {
      failure = ExportError(
        code: .writeFailed, path: path, errno: code, message: "cannot close the temporary file")
    }
    if failure == nil, let code = SystemCalls.rename(temporary.path, path) {
      failure = ExportError(
        code: .writeFailed, path: path, errno: code,
        message: "cannot move the finished file into place")
    }
    if let failure {
      SystemCalls.remove(temporary.path)
      throw failure
    }
  }

  /// Proves the directory accepts new files by creating and removing one, which catches read-only mounts,
  /// permissions and full disks of inodes that a permission check alone would miss (root passes `access`).
  static func probeWritable(directoryOf path: String) throws(ExportError) {
    let temporary = try createTemporarySibling(of: path)
    _ = SystemCalls.close(temporary.fd)
    SystemCalls.remove(temporary.path)
  }

  static func directory(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    let directory = String(path[..<slash])
    return directory.isEmpty ? "/" : directory
  }

  static func fileName(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return path }
    return String(path[path.index(after: slash)...])
  }

  private static func createTemporarySibling(of path: String) throws(ExportError) -> (
    fd: Int32, path: String
  ) {
    let directory = directory(of: path)
    var lastErrno: Int32 = 0
    for _ in 0..<8 {
      let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
      let candidate = "\(directory)/.\(fileName(of: path)).\(SystemCalls.processID).\(suffix).tmp"
      switch SystemCalls.createExclusive(candidate) {
      case .success(let fd): return (fd, candidate)
      case .failure(let failure): lastErrno = failure.code
      }
      // Only a name collision is worth another try; anything else would fail the same way again.
      if lastErrno != SystemCalls.alreadyExists { break }
    }
    throw ExportError(
      code: .notWritable, path: directory, errno: lastErrno,
      message: "cannot create a file in this directory")
  }
}
