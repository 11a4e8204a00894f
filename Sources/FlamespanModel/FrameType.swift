/// Which kind of code a location is in, with the values of the OpenTelemetry semantic convention
/// `profile.frame.type`, so that OTLP readers colour and group frames the way they expect.
public struct FrameType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
  public var rawValue: String
  public init(rawValue: String) { self.rawValue = rawValue }

  public static let native = FrameType(rawValue: "native")
  public static let kernel = FrameType(rawValue: "kernel")
  public static let go = FrameType(rawValue: "go")
  public static let v8JavaScript = FrameType(rawValue: "v8js")
  public static let jvm = FrameType(rawValue: "jvm")
  public static let cpython = FrameType(rawValue: "cpython")
  public static let dotnet = FrameType(rawValue: "dotnet")

  public var description: String { rawValue }
}
