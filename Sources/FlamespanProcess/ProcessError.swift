#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// Why reading something about a process failed, with enough context (pid, path, errno) to act on it.
public struct ProcessError: Error, CustomStringConvertible, Sendable {
  /// A growable set of failure kinds: new codes can be added without breaking `switch`-free callers.
  public struct Code: Hashable, Sendable, CustomStringConvertible {
    public let name: String
    private init(_ name: String) { self.name = name }

    /// The process (or thread) does not exist, or exited while being read.
    public static let noSuchProcess = Code("noSuchProcess")
    /// The caller lacks the privilege to read it (ptrace access mode checks on /proc).
    public static let permissionDenied = Code("permissionDenied")
    /// The data was read but did not have the expected shape.
    public static let malformed = Code("malformed")
    /// Any other failure of the underlying system call.
    public static let io = Code("io")

    public var description: String { name }
  }

  public var code: Code
  public var pid: Int32?
  /// The `errno` of the failing system call, when one failed.
  public var errno: Int32?
  public var path: String?
  public var message: String

  public init(
    code: Code, pid: Int32? = nil, errno: Int32? = nil, path: String? = nil, message: String
  ) {
    self.code = code
    self.pid = pid
    self.errno = errno
    self.path = path
    self.message = message
  }

  /// Classifies a failed system call on a /proc path: a vanished process reports ENOENT or ESRCH.
  static func fromErrno(_ errorNumber: Int32, pid: Int32?, path: String, operation: String)
    -> ProcessError
  {
    let code: Code
    switch errorNumber {
    case ENOENT, ESRCH: code = .noSuchProcess
    case EACCES, EPERM: code = .permissionDenied
    default: code = .io
    }
    let reason = String(cString: strerror(errorNumber))
    return ProcessError(
      code: code, pid: pid, errno: errorNumber, path: path,
      message: "\(operation) \(path): \(reason)")
  }

  public var description: String {
    var parts = ["\(code): \(message)"]
    if let pid { parts.append("pid \(pid)") }
    if let errno { parts.append("errno \(errno)") }
    return parts.joined(separator: ", ")
  }
}
