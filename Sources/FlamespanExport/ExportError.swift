/// Why an export, an import or a check of an output path failed, with enough context to act on it.
public struct ExportError: Error, CustomStringConvertible, Sendable, Equatable {
  /// What went wrong, as a category a caller can branch on. A struct rather than an enum so new codes
  /// can be added without breaking exhaustive switches in callers.
  public struct Code: Hashable, Sendable, CustomStringConvertible {
    public let name: String
    private init(_ name: String) { self.name = name }
    public var description: String { name }

    public static let unsupportedFormat = Code("unsupported format")
    public static let directoryMissing = Code("directory missing")
    public static let notWritable = Code("not writable")
    public static let writeFailed = Code("write failed")
    public static let readFailed = Code("read failed")
    public static let compressionFailed = Code("compression failed")
    public static let decompressionFailed = Code("decompression failed")
    public static let malformedProfile = Code("malformed profile")
  }

  public var code: Code
  /// The file involved, when there is one.
  public var path: String?
  /// The errno of the failing system call, when one failed.
  public var errno: Int32?
  public var message: String

  public init(code: Code, path: String? = nil, errno: Int32? = nil, message: String) {
    self.code = code
    self.path = path
    self.errno = errno
    self.message = message
  }

  public var description: String {
    var text = "\(code)"
    if let path { text += " (\(path))" }
    text += ": \(message)"
    if let errno { text += " [\(SystemCalls.errorText(errno)), errno \(errno)]" }
    return text
  }
}
