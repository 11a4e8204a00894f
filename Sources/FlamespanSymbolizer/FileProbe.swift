#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// Identity of a file on disk, so that one file reached through several paths (or a file replaced under the
/// same path) maps to the right cache entry.
struct FileIdentity: Hashable {
  var device: UInt64
  var inode: UInt64
  var size: Int64
  var modificationSeconds: Int
  var modificationNanoseconds: Int
}

/// Cheap checks done before libelf/libdw see a file, so that the caller gets a precise reason (missing,
/// permission, not ELF, truncated) instead of a generic libelf message.
enum FileProbe {
  static func identify(path: String) throws(SymbolizerError) -> FileIdentity {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    if descriptor < 0 { throw openError(path: path, errno: errno) }
    defer { close(descriptor) }

    var info = stat()
    guard fstat(descriptor, &info) == 0 else {
      throw SymbolizerError(code: .ioError, path: path, errno: errno, message: "cannot stat file")
    }
    guard (info.st_mode & S_IFMT) == S_IFREG else {
      throw SymbolizerError(code: .notRegularFile, path: path, message: "not a regular file")
    }

    var header = [UInt8](repeating: 0, count: 64)
    let count = header.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, 64, 0) }
    if count < 0 {
      throw SymbolizerError(
        code: .ioError, path: path, errno: errno, message: "cannot read ELF header")
    }
    guard count >= 4, header[0] == 0x7f, header[1] == 0x45, header[2] == 0x4c, header[3] == 0x46
    else {
      throw SymbolizerError(code: .notELF, path: path, message: "not an ELF file (no ELF magic)")
    }
    guard count == 64 else {
      throw SymbolizerError(
        code: .corruptELF, path: path, message: "truncated ELF header (\(count) of 64 bytes)")
    }
    // EI_CLASS 2 = 64-bit, EI_DATA 1 = little-endian: what this machine runs.
    guard header[4] == 2, header[5] == 1 else {
      throw SymbolizerError(
        code: .unsupportedELF, path: path,
        message:
          "unsupported ELF class/data (\(header[4])/\(header[5])); only 64-bit little-endian is read"
      )
    }

    return FileIdentity(
      device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
      modificationSeconds: Int(info.st_mtim.tv_sec),
      modificationNanoseconds: Int(info.st_mtim.tv_nsec))
  }

  private static func openError(path: String, errno code: Int32) -> SymbolizerError {
    switch code {
    case ENOENT, ENOTDIR:
      return SymbolizerError(code: .fileNotFound, path: path, errno: code, message: "no such file")
    case EACCES, EPERM:
      return SymbolizerError(
        code: .permissionDenied, path: path, errno: code, message: "permission denied")
    default:
      return SymbolizerError(code: .ioError, path: path, errno: code, message: "cannot open file")
    }
  }
}
