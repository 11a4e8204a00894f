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

  public static func encode(_ profile: Profile, resource: OTLPResource) throws(OTLPError) -> [UInt8]
  {
    var dictionary = DictionaryBuilder()
    var otlpProfile = ProtoProfile()
    otlpProfile.sampleType = dictionary.valueType("samples", "count")
    otlpProfile.periodType = dictionary.valueType("cpu", "nanoseconds")
    otlpProfile.period = profile.periodNanos
    otlpProfile.timeUnixNano = UInt64(clamping: profile.startTimeNanos)
    otlpProfile.durationNano = UInt64(clamping: profile.durationNanos)
    otlpProfile.profileID = Data((0..<16).map { _ in UInt8.random(in: 0...255) })
    if !profile.comments.isEmpty {
      var comments = ProtoArrayValue()
      comments.values = profile.comments.map { ProtoAnyValue.string($0) }
      var value = ProtoAnyValue()
      value.arrayValue = comments
      otlpProfile.attributeIndices = [dictionary.attribute(OTLPAttribute.comment, value)]
    }

    otlpProfile.samples.reserveCapacity(profile.samples.count)
    for sample in profile.samples {
      otlpProfile.samples.append(dictionary.sample(sample))
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
