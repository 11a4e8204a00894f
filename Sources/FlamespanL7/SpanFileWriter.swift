import FlamespanModel
import Glibc

/// Failure to write a spans file, with the errno and the path.
public struct SpanFileError: Error, CustomStringConvertible, Sendable {
  public var path: String
  public var errno: Int32
  public var operation: String

  public var description: String {
    "cannot \(operation) \(path): \(String(cString: strerror(errno))) (errno \(errno))"
  }
}

extension OTLPTraceJSON {
  /// Writes the document next to `path` and renames it into place, so readers never see half a file.
  public static func write(
    _ spans: [HTTPSpan], to path: String, hostName: String, processNames: [Int32: String] = [:]
  ) throws(SpanFileError) {
    let bytes = Array(encode(spans, hostName: hostName, processNames: processNames).utf8)
    let temporary = path + ".tmp-\(getpid())"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw SpanFileError(path: temporary, errno: errno, operation: "create") }
    var offset = 0
    while offset < bytes.count {
      let written = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
      if written < 0 && errno == EINTR { continue }
      guard written > 0 else {
        let code = errno
        close(fd)
        unlink(temporary)
        throw SpanFileError(path: temporary, errno: code, operation: "write")
      }
      offset += written
    }
    guard close(fd) == 0 else {
      let code = errno
      unlink(temporary)
      throw SpanFileError(path: temporary, errno: code, operation: "close")
    }
    guard rename(temporary, path) == 0 else {
      let code = errno
      unlink(temporary)
      throw SpanFileError(path: path, errno: code, operation: "rename into")
    }
  }

  /// This machine's name, for the `host.name` resource attribute.
  public static func hostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count) == 0 else { return "unknown" }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }
}
