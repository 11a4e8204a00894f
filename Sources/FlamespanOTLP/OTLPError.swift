/// Why an OTLP profile could not be encoded or decoded. File errors belong to the caller that did the I/O.
public struct OTLPError: Error, CustomStringConvertible, Sendable, Equatable {
  /// A struct rather than an enum so codes can be added without breaking callers' switches.
  public struct Code: Hashable, Sendable, CustomStringConvertible {
    public let name: String
    private init(_ name: String) { self.name = name }
    public var description: String { name }

    /// The bytes are not a protobuf message, or are one with out-of-range indexes or bad ids.
    public static let malformedProfile = Code("malformed OTLP profile")
    /// The profile does not fit the format (a table beyond 2^31 entries) or serialization failed.
    public static let encodingFailed = Code("OTLP encoding failed")
  }

  public var code: Code
  public var message: String

  public init(code: Code, message: String) {
    self.code = code
    self.message = message
  }

  public var description: String { "\(code): \(message)" }
}
