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

  /// Opens `path` read-only when it is a regular file; nil otherwise. A device, directory or FIFO named
  /// by a mapping is no binary, and reading one (/dev/zero) would not end.
  public convenience init?(regularFileAt path: String) {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
    guard descriptor >= 0 else { return nil }
    var status = stat()
    guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
      close(descriptor)
      return nil
    }
    self.init(descriptor: descriptor)
  }

  deinit { close(descriptor) }

  /// The file's size in bytes, or nil when fstat fails.
  public var size: UInt64? {
    var status = stat()
    guard fstat(descriptor, &status) == 0 else { return nil }
    return UInt64(status.st_size)
  }

  /// Exactly `count` bytes at `offset`, or nil when the file is shorter or the read fails.
  ///
  /// Memory grows with what the file returns, not with what was asked: sizes come from headers of files
  /// we do not control, and a corrupt one that asks a 500-byte file for gigabytes must cost a short read,
  /// not gigabytes of zeroes (found by the ELF fuzz target: Fuzz/Crashers/elf/).
  public func read(_ offset: UInt64, _ count: Int) -> [UInt8]? {
    guard count >= 0, offset <= UInt64(Int64.max), UInt64(count) <= UInt64(Int64.max) - offset
    else {
      return nil
    }
    if count == 0 { return [] }
    var buffer = [UInt8](repeating: 0, count: min(count, Self.firstReadBytes))
    var done = 0
    while done < count {
      if done == buffer.count {
        // The file had all of the buffer: double it, up to what was asked.
        buffer.append(contentsOf: repeatElement(0, count: min(count - done, buffer.count)))
      }
      let wanted = buffer.count - done
      let result = buffer.withUnsafeMutableBytes { raw in
        pread(descriptor, raw.baseAddress! + done, wanted, off_t(offset) + off_t(done))
      }
      if result < 0, errno == EINTR { continue }
      guard result > 0 else { return nil }
      done += result
    }
    return buffer
  }

  /// The first allocation of a read; larger reads grow from here as the file keeps returning bytes.
  static let firstReadBytes = 1 << 20

  /// (device, inode) of the open file, to check it is the one a mapping names.
  public var identity: (device: UInt64, inode: UInt64)? {
    var status = stat()
    guard fstat(descriptor, &status) == 0 else { return nil }
    return (UInt64(status.st_dev), UInt64(status.st_ino))
  }
}
