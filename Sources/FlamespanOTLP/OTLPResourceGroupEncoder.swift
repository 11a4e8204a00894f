import FlamespanModel
import Foundation
import SwiftProtobuf

/// A resource attribute value: OTLP resources carry strings and integers here.
public enum OTLPResourceValue: Sendable, Hashable {
  case string(String)
  case int(Int64)
}

/// One resource (typically one process) and the profile of what it ran.
public struct OTLPResourceGroup: Sendable {
  /// Key and value pairs in the order they are written, such as `service.name` and `process.pid`.
  public var attributes: [(key: String, value: OTLPResourceValue)]
  public var profile: Profile

  public init(attributes: [(key: String, value: OTLPResourceValue)], profile: Profile) {
    self.attributes = attributes
    self.profile = profile
  }
}

/// Writes several resources' profiles as one `ExportProfilesServiceRequest` with one shared dictionary, so a
/// whole-machine window can say which service and container each sample came from without repeating the
/// stacks and functions they share (libc, the kernel) once per process.
///
/// Samples are encoded exactly as `OTLPProfileEncoder` does: `samples/count` with period `cpu/nanoseconds`,
/// a `Link` for samples taken inside a span, pid, tid and thread name as sample attributes.
public enum OTLPResourceGroupEncoder {
  public static func encode(_ groups: [OTLPResourceGroup]) throws(OTLPError) -> [UInt8] {
    var dictionary = DictionaryBuilder()
    var request = ProtoRequest()
    for group in groups {
      let otlpProfile = OTLPProfileEncoder.profileMessage(group.profile, into: &dictionary)
      var scope = ProtoScopeProfiles()
      scope.scope.name = OTLPProfileEncoder.scopeName
      scope.profiles = [otlpProfile]
      var resourceProfiles = ProtoResourceProfiles()
      for (key, value) in group.attributes {
        var keyValue = ProtoKeyValue()
        keyValue.key = key
        switch value {
        case .string(let text): keyValue.value = .string(text)
        case .int(let number): keyValue.value = .int(number)
        }
        resourceProfiles.resource.attributes.append(keyValue)
      }
      resourceProfiles.scopeProfiles = [scope]
      request.resourceProfiles.append(resourceProfiles)
    }
    request.dictionary = try dictionary.finish()
    do {
      return try request.serializedBytes()
    } catch {
      throw OTLPError(code: .encodingFailed, message: "protobuf serialization failed: \(error)")
    }
  }
}
