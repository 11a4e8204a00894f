import FlamespanModel
import Foundation
import SwiftProtobuf

/// Reads a binary OTLP `ExportProfilesServiceRequest` (or `ProfilesData`, which has the same layout)
/// in the opentelemetry-proto v1.10.0 layout back into a `Profile`, for `drill` and `spans`.
///
/// Input is untrusted: every table index is bounds-checked and every id length verified, and a problem
/// becomes `OTLPError(code: .malformedProfile)` naming the message and index at fault.
public enum OTLPProfileDecoder {
  public struct Decoded: Sendable {
    public var profile: Profile
    /// The resource attributes of the first resource that had any.
    public var resource: OTLPResource
  }

  public static func decode(_ bytes: [UInt8]) throws(OTLPError) -> Profile {
    try decodeWithResource(bytes).profile
  }

  public static func decodeWithResource(_ bytes: [UInt8]) throws(OTLPError) -> Decoded {
    guard !bytes.isEmpty else {
      throw OTLPError(code: .malformedProfile, message: "empty input")
    }
    let request: ProtoRequest
    do {
      request = try ProtoRequest(serializedBytes: bytes)
    } catch {
      throw OTLPError(
        code: .malformedProfile,
        message: "not an OTLP ExportProfilesServiceRequest (\(bytes.count) bytes): \(error)")
    }
    var resolver = try DictionaryResolver(request.dictionary)
    return try resolver.decode(request)
  }
}

/// Turns dictionary indexes into model values, checking each one and caching what it resolved.
private struct DictionaryResolver {
  let tables: ProtoDictionary
  private var locations: [Int32: ResolvedLocation] = [:]
  private var mappings: [Int32: Mapping] = [:]
  /// Samples that share a stack share one array too: a small hostile file that points a million
  /// samples at one long stack must not become a million copies of it.
  private var stacks: [Int32: [ResolvedLocation]] = [:]

  init(_ tables: ProtoDictionary) throws(OTLPError) {
    self.tables = tables
    guard tables.stringTable.isEmpty || tables.stringTable[0].isEmpty else {
      throw malformed("string_table[0] must be the empty string")
    }
  }

  private enum CountSource: Hashable {
    case samples
    case nanoseconds
    case other(String, String)

    /// Prefer exact counts; a request carrying both views of the same samples must not count twice.
    var preference: Int {
      switch self {
      case .samples: 0
      case .nanoseconds: 1
      case .other: 2
      }
    }
  }

  mutating func decode(_ request: ProtoRequest) throws(OTLPError) -> OTLPProfileDecoder.Decoded {
    var resource = OTLPResource()
    var candidates: [(source: CountSource, profile: ProtoProfile)] = []
    for resourceProfiles in request.resourceProfiles {
      if resource == OTLPResource() {
        for attribute in resourceProfiles.resource.attributes {
          let key =
            attribute.key.isEmpty
            ? try string(attribute.keyStrindex, "resource key") : attribute.key
          let value = try text(attribute.value, "resource attribute \(key)")
          if key == OTLPAttribute.hostName { resource.hostName = value }
          if key == OTLPAttribute.serviceName { resource.serviceName = value }
        }
      }
      for scope in resourceProfiles.scopeProfiles {
        for profile in scope.profiles {
          let type = try string(profile.sampleType.typeStrindex, "sample_type")
          let unit = try string(profile.sampleType.unitStrindex, "sample_type unit")
          let source: CountSource =
            type == "samples"
            ? .samples
            : unit == "nanoseconds" && profile.period > 0 ? .nanoseconds : .other(type, unit)
          candidates.append((source, profile))
        }
      }
    }
    guard let chosen = candidates.map(\.source).min(by: { $0.preference < $1.preference }) else {
      return .init(
        profile: Profile(samples: [], periodNanos: 0, startTimeNanos: 0, durationNanos: 0),
        resource: resource)
    }

    var samples: [ProfileSample] = []
    var comments: [String] = []
    var period: Int64 = 0
    var start = UInt64.max
    var end: UInt64 = 0
    for (source, profile) in candidates where source == chosen {
      if period == 0 { period = profile.period }
      start = min(start, profile.timeUnixNano)
      end = max(end, profile.timeUnixNano &+ profile.durationNano)
      for index in profile.attributeIndices {
        let (key, value) = try attribute(index, "profile")
        if key == OTLPAttribute.comment, case .arrayValue(let array)? = value.value {
          for item in array.values { comments.append(try text(item, "comment")) }
        }
      }
      samples.reserveCapacity(samples.count + profile.samples.count)
      for (sampleIndex, sample) in profile.samples.enumerated() {
        samples.append(
          try self.sample(sample, source: source, period: profile.period, index: sampleIndex))
      }
    }
    return .init(
      profile: Profile(
        samples: samples, periodNanos: period, startTimeNanos: Int64(clamping: start),
        durationNanos: Int64(clamping: end &- start), comments: comments),
      resource: resource)
  }

  private mutating func sample(
    _ sample: ProtoSample, source: CountSource, period: Int64, index: Int
  ) throws(OTLPError) -> ProfileSample {
    let what = "sample \(index)"
    var count: Int64
    if sample.values.isEmpty {
      // A sample may list one timestamp per event instead of a value.
      count = Int64(sample.timestampsUnixNano.count)
    } else {
      count = sample.values.reduce(0) { $0 &+ $1 }
      if source == .nanoseconds { count /= period }
    }
    let stack = try stack(sample.stackIndex, what)
    var result = ProfileSample(stack: stack, pid: 0, tid: 0, threadName: "", count: count)
    var spanName: String?
    for attributeIndex in sample.attributeIndices {
      let (key, value) = try attribute(attributeIndex, what)
      switch key {
      case OTLPAttribute.processID: result.pid = Int32(truncatingIfNeeded: value.intValue)
      case OTLPAttribute.threadID: result.tid = Int32(truncatingIfNeeded: value.intValue)
      case OTLPAttribute.threadName: result.threadName = try text(value, "\(what) thread.name")
      case OTLPAttribute.spanName: spanName = try text(value, "\(what) span name")
      default: continue
      }
    }
    if sample.linkIndex != 0 {
      let link = try element(tables.linkTable, sample.linkIndex, "link_table", what)
      let traceID = [UInt8](link.traceID)
      let spanID = [UInt8](link.spanID)
      guard traceID.count == 16, spanID.count == 8 else {
        throw malformed(
          "\(what) links to ids of \(traceID.count) and \(spanID.count) bytes (need 16 and 8)")
      }
      // All-zero ids are W3C's "invalid"; such a link means no span, not a span to drill into.
      if traceID.contains(where: { $0 != 0 }) && spanID.contains(where: { $0 != 0 }) {
        result.span = SpanContext(traceID: traceID, spanID: spanID, name: spanName)
      }
    }
    return result
  }

  private mutating func stack(_ index: Int32, _ what: String) throws(OTLPError)
    -> [ResolvedLocation]
  {
    if let cached = stacks[index] { return cached }
    let stack = try element(tables.stackTable, index, "stack_table", what)
    var locations: [ResolvedLocation] = []
    locations.reserveCapacity(stack.locationIndices.count)
    for locationIndex in stack.locationIndices {
      locations.append(try location(locationIndex, "stack \(index)"))
    }
    stacks[index] = locations
    return locations
  }

  private mutating func location(_ index: Int32, _ what: String) throws(OTLPError)
    -> ResolvedLocation
  {
    if let cached = locations[index] { return cached }
    let location = try element(tables.locationTable, index, "location_table", what)
    var isKernel = false
    var frameType: FrameType?
    for attributeIndex in location.attributeIndices {
      let (key, value) = try attribute(attributeIndex, "location \(index)")
      if key == OTLPAttribute.frameType {
        isKernel = value.stringValue == "kernel"
        if value.stringValue != "kernel" && value.stringValue != "native" {
          frameType = FrameType(rawValue: value.stringValue)
        }
      }
    }
    let mapping =
      location.mappingIndex == 0
      ? nil : try self.mapping(location.mappingIndex, "location \(index)", isKernel: isKernel)
    var frames: [SourceFrame] = []
    for line in location.lines {
      let function = try element(
        tables.functionTable, line.functionIndex, "function_table", "location \(index)")
      let name = try string(function.nameStrindex, "function name")
      let systemName = try string(function.systemNameStrindex, "function system_name")
      let file = try string(function.filenameStrindex, "function filename")
      frames.append(
        SourceFrame(
          function: name, systemName: systemName.isEmpty || systemName == name ? nil : systemName,
          file: file.isEmpty ? nil : file, line: Int(clamping: line.line),
          column: Int(clamping: line.column)))
    }
    // JIT code has no file: a runtime's frame type on anonymous memory is how OTLP says "JIT".
    let isJIT =
      frameType != nil && frameType != .go && (mapping == nil || mapping?.kind == .anonymous)
    let resolved = ResolvedLocation(
      address: location.address, mapping: mapping, frames: frames,
      unknownReason: frames.isEmpty ? "not symbolized in the OTLP profile" : nil,
      frameType: frameType, isJIT: isJIT)
    locations[index] = resolved
    return resolved
  }

  private mutating func mapping(_ index: Int32, _ what: String, isKernel: Bool) throws(OTLPError)
    -> Mapping
  {
    if let cached = mappings[index] { return cached }
    let mapping = try element(tables.mappingTable, index, "mapping_table", what)
    let filename = try string(mapping.filenameStrindex, "mapping \(index) filename")
    var buildID: BuildID?
    for attributeIndex in mapping.attributeIndices {
      let (key, value) = try attribute(attributeIndex, "mapping \(index)")
      if key == OTLPAttribute.gnuBuildID {
        buildID = BuildID(hex: try text(value, "mapping \(index) build id")).flatMap {
          $0.bytes.isEmpty ? nil : $0
        }
      }
    }
    var (kind, path) = MappingKind.classify(profileFileName: filename)
    if isKernel { kind = .kernel }
    let result = Mapping(
      start: mapping.memoryStart, limit: mapping.memoryLimit, fileOffset: mapping.fileOffset,
      path: path, buildID: buildID, kind: kind)
    mappings[index] = result
    return result
  }

  private func attribute(_ index: Int32, _ what: String) throws(OTLPError) -> (
    String, ProtoAnyValue
  ) {
    let attribute = try element(tables.attributeTable, index, "attribute_table", what)
    return (try string(attribute.keyStrindex, "attribute key"), attribute.value)
  }

  /// A string attribute value, whether spelled out or (v1.10.0) given as a string-table index.
  private func text(_ value: ProtoAnyValue, _ what: String) throws(OTLPError) -> String {
    switch value.value {
    case .stringValue(let text)?: return text
    case .stringValueStrindex(let index)?: return try string(index, what)
    case nil: return ""
    default: throw malformed("\(what) is not a string")
    }
  }

  private func string(_ index: Int32, _ what: String) throws(OTLPError) -> String {
    // Index 0 is the empty string by definition, even when a writer left the table out entirely.
    if index == 0 && tables.stringTable.isEmpty { return "" }
    return try checked(tables.stringTable, index, "string_table", what)
  }

  private func element<Element: SwiftProtobuf.Message>(
    _ table: [Element], _ index: Int32, _ tableName: String, _ what: String
  ) throws(OTLPError) -> Element {
    if index == 0 && table.isEmpty { return Element() }
    return try checked(table, index, tableName, what)
  }

  private func checked<Element>(
    _ table: [Element], _ index: Int32, _ tableName: String, _ what: String
  ) throws(OTLPError) -> Element {
    guard index >= 0, Int(index) < table.count else {
      throw malformed(
        "\(what) refers to \(tableName)[\(index)], but the table has \(table.count) entries")
    }
    return table[Int(index)]
  }
}

private func malformed(_ message: String) -> OTLPError {
  OTLPError(code: .malformedProfile, message: message)
}
