#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

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
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count - 1) == 0 else { return OTLPResource() }
    let name = String(
      decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return OTLPResource(hostName: name.isEmpty ? nil : name)
  }
}
