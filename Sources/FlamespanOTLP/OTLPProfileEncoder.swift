import FlamespanModel
import Foundation
import SwiftProtobuf

/// Writes a `Profile` as a binary OTLP `ExportProfilesServiceRequest` (opentelemetry-proto v1.10.0).
///
/// The sample type is `samples/count` with period `cpu/nanoseconds`: our samples are aggregated counts,
/// which that pair states exactly (CPU time is count × period), and it is what the OpenTelemetry eBPF
/// profiler sends, so collectors and backends already know it. A sample taken inside a span points at a
/// `Link` with its trace and span ids; pid, tid and thread name are sample attributes.
public enum OTLPProfileEncoder {
  public static let scopeName = "flamespan"

  /// One profile's message: its sample and period types, times, a fresh random profile id (the spec wants
  /// one per profile) and its samples, with their stacks and strings added to the shared `dictionary`.
  static func profileMessage(_ profile: Profile, into dictionary: inout DictionaryBuilder)
    -> ProtoProfile
  {
    var message = ProtoProfile()
    message.sampleType = dictionary.valueType("samples", "count")
    message.periodType = dictionary.valueType("cpu", "nanoseconds")
    message.period = profile.periodNanos
    message.timeUnixNano = UInt64(clamping: profile.startTimeNanos)
    message.durationNano = UInt64(clamping: profile.durationNanos)
    message.profileID = Data((0..<16).map { _ in UInt8.random(in: 0...255) })
    message.samples.reserveCapacity(profile.samples.count)
    for sample in profile.samples {
      message.samples.append(dictionary.sample(sample))
    }
    return message
  }

  public static func encode(_ profile: Profile, resource: OTLPResource) throws(OTLPError) -> [UInt8]
  {
    var dictionary = DictionaryBuilder()
    var otlpProfile = profileMessage(profile, into: &dictionary)
    if !profile.comments.isEmpty {
      var comments = ProtoArrayValue()
      comments.values = profile.comments.map { ProtoAnyValue.string($0) }
      var value = ProtoAnyValue()
      value.arrayValue = comments
      otlpProfile.attributeIndices = [dictionary.attribute(OTLPAttribute.comment, value)]
    }

    var scope = ProtoScopeProfiles()
    scope.scope.name = scopeName
    scope.profiles = [otlpProfile]
    var resourceProfiles = ProtoResourceProfiles()
    if let hostName = resource.hostName {
      resourceProfiles.resource.attributes.append(.init(OTLPAttribute.hostName, hostName))
    }
    if let serviceName = resource.serviceName {
      resourceProfiles.resource.attributes.append(.init(OTLPAttribute.serviceName, serviceName))
    }
    resourceProfiles.scopeProfiles = [scope]

    var request = ProtoRequest()
    request.resourceProfiles = [resourceProfiles]
    request.dictionary = try dictionary.finish()
    do {
      return try request.serializedBytes()
    } catch {
      throw OTLPError(code: .encodingFailed, message: "protobuf serialization failed: \(error)")
    }
  }
}

extension ProtoAnyValue {
  static func string(_ text: String) -> ProtoAnyValue {
    var value = ProtoAnyValue()
    value.stringValue = text
    return value
  }

  static func int(_ number: Int64) -> ProtoAnyValue {
    var value = ProtoAnyValue()
    value.intValue = number
    return value
  }
}

extension ProtoKeyValue {
  /// Resource attributes live outside the dictionary, so they spell their key out.
  init(_ key: String, _ text: String) {
    self.init()
    self.key = key
    self.value = .string(text)
  }
}
