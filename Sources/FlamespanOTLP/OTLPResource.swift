import FlamespanModel

/// Who produced a profile: the OTLP resource attributes written with it.
public struct OTLPResource: Sendable, Equatable {
  public var hostName: String?
  public var serviceName: String?

  public init(hostName: String? = nil, serviceName: String? = nil) {
    self.hostName = hostName
    self.serviceName = serviceName
  }

  /// This machine's host name. A whole-machine profile has no single service, so none is set.
  public static func local() -> OTLPResource {
    OTLPResource(hostName: HostName.current())
  }
}
