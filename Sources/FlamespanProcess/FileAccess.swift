#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// The one place this module touches file system calls, so errno handling lives in a single seam.
enum FileAccess {
  /// Reads a whole file whose size is unknown up front (/proc files report size 0).
  static func readAll(path: String, pid: Int32?, limit: Int = 64 << 20) throws(ProcessError)
    -> [UInt8]
  {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else {
      throw ProcessError.fromErrno(errno, pid: pid, path: path, operation: "open")
    }
    defer { close(descriptor) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    while bytes.count < limit {
      let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
      if count < 0 {
        if errno == EINTR { continue }
        throw ProcessError.fromErrno(errno, pid: pid, path: path, operation: "read")
      }
      if count == 0 { break }
      bytes.append(contentsOf: chunk[0..<count])
    }
    return bytes
  }

  static func readLink(path: String) -> String? {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let count = buffer.withUnsafeMutableBufferPointer {
      readlink(path, $0.baseAddress!, $0.count - 1)
    }
    guard count >= 0 else { return nil }
    return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  /// Device and inode of `path`, following symlinks (so /proc/PID/map_files entries give the mapped file).
  static func identity(path: String) -> (device: UInt64, inode: UInt64)? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    return (UInt64(info.st_dev), UInt64(info.st_ino))
  }
}
