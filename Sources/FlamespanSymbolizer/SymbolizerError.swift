/// Why a whole file cannot be symbolized. Single bad addresses never produce one of these: they become
/// unknown locations with a reason.
public struct SymbolizerError: Error, CustomStringConvertible, Sendable, Hashable {
  public enum Code: String, Sendable, Hashable {
    case fileNotFound
    case permissionDenied
    case notRegularFile
    /// The file exists but does not start with the ELF magic.
    case notELF
    /// ELF magic is there but the headers are truncated or inconsistent.
    case corruptELF
    /// An ELF class or machine this symbolizer does not read (for example 32-bit or big-endian).
    case unsupportedELF
    /// Any other I/O failure; see `errno`.
    case ioError
    /// libdw refused the file; `message` has its words.
    case dwarfError
  }

  public var code: Code
  public var path: String
  /// The errno of the failing system call, 0 when the failure is not a system call's.
  public var errno: Int32
  public var message: String

  public init(code: Code, path: String, errno: Int32 = 0, message: String) {
    self.code = code
    self.path = path
    self.errno = errno
    self.message = message
  }

  public var description: String {
    var text = "\(path): \(message)"
    if errno != 0 { text += " (errno \(errno))" }
    return text
  }
}
