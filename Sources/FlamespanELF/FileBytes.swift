import Glibc

/// Reads byte ranges of an open file with pread, so only the parts in use are ever loaded. Owns the
/// descriptor and closes it when released.
public final class FileBytes: @unchecked Sendable {
  public let descriptor: Int32

  public init(descriptor: Int32) { self.descriptor = descriptor }

  /// Opens `path` read-only; nil with errno set when it cannot be opened.
  public convenience init?(path: String) {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { return nil }
    self.init(descriptor: descriptor)
  }

  deinit { close(descriptor) }

  /// Exactly `count` bytes at `offset`, or nil when the file is shorter or the read fails.
  public func read(_ offset: UInt64, _ count: Int) -> [UInt8]? {
    guard count >= 0, offset < UInt64(Int64.max) else { return nil }
    if count == 0 { return [] }
    var buffer = [UInt8](repeating: 0, count: count)
    var done = 0
    while done < count {
      let result = buffer.withUnsafeMutableBytes { raw in
        pread(descriptor, raw.baseAddress! + done, count - done, off_t(offset) + off_t(done))
      }
      if result < 0, errno == EINTR { continue }
      guard result > 0 else { return nil }
      done += result
    }
    return buffer
  }

  /// (device, inode) of the open file, to check it is the one a mapping names.
  public var identity: (device: UInt64, inode: UInt64)? {
    var status = stat()
    guard fstat(descriptor, &status) == 0 else { return nil }
    return (UInt64(status.st_dev), UInt64(status.st_ino))
  }
}
