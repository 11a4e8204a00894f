#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The only place this module talks to the C library for files, so errno handling lives in one spot.
/// An errno value carried through `Result`.
struct SystemErrno: Error {
  var code: Int32
}

enum SystemCalls {
  static func errorText(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "error \(code)" }
    return String(cString: text)
  }

  enum PathKind { case missing, directory, other }

  /// What is at `path`, following symlinks, with the errno when stat failed.
  static func kind(of path: String) -> (PathKind, Int32?) {
    var info = stat()
    if stat(path, &info) != 0 {
      let code = errno
      return (code == ENOENT || code == ENOTDIR ? .missing : .other, code)
    }
    return ((info.st_mode & S_IFMT) == S_IFDIR ? .directory : .other, nil)
  }

  static func readWholeFile(_ path: String) -> Result<[UInt8], SystemErrno> {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return .failure(SystemErrno(code: errno)) }
    defer { _ = close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
      let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
      if count < 0 {
        if errno == EINTR { continue }
        return .failure(SystemErrno(code: errno))
      }
      if count == 0 { return .success(bytes) }
      bytes.append(contentsOf: chunk[0..<count])
    }
  }
}
