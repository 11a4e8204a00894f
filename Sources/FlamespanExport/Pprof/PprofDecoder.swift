import FlamespanModel
import FlamespanOTLP
import SwiftProtobuf

/// Reads a pprof profile (gzipped or raw protobuf) back into a `Profile`: stacks with their inline chains,
/// mappings, counts, and the pid/tid/thread/span labels Flamespan writes.
///
/// Input is untrusted: swift-protobuf checks the wire format (lengths, varints, UTF-8), and every id and
/// string index is checked here; problems become `ExportError(code: .malformedProfile)`.
public enum PprofDecoder {
  public static func decode(_ bytes: [UInt8]) throws(ExportError) -> Profile {
    let protobuf = Gzip.isGzip(bytes) ? try Gzip.decompress(bytes) : bytes
    let message: Perftools_Profiles_Profile
    do {
      var options = BinaryDecodingOptions()
      // Fields newer than our copy of profile.proto are not needed, so they are not kept either.
      options.discardUnknownFields = true
      message = try Perftools_Profiles_Profile(serializedBytes: protobuf, options: options)
    } catch {
      throw malformed(wireProblem(error))
    }
    do {
      return try PprofResolver(message).makeProfile()
    } catch {
      throw malformed(error.reason)
    }
  }

  private static func malformed(_ reason: String) -> ExportError {
    ExportError(code: .malformedProfile, message: "not a valid pprof profile: \(reason)")
  }

  private static func wireProblem(_ error: any Error) -> String {
    switch error as? BinaryDecodingError {
    case .truncated?: return "the data ends inside a field (a truncated or partly copied file?)"
    case .malformedProtobuf?:
      return "bytes that are not protobuf (an invalid field tag or wire type)"
    case .invalidUTF8?: return "a string that is not valid UTF-8"
    case .messageDepthLimit?: return "messages nested deeper than a profile can be"
    default: return "cannot decode the protobuf: \(error)"
    }
  }
}

/// Why a well-formed message is not a usable profile: an id or string index that points nowhere.
private struct PprofResolutionFailure: Error {
  var reason: String
}

/// Turns the decoded message's ids and string indexes into a `Profile`, checking each reference.
private struct PprofResolver {
  typealias Failure = PprofResolutionFailure

  let message: Perftools_Profiles_Profile
  let strings: [String]

  init(_ message: Perftools_Profiles_Profile) {
    self.message = message
    strings = message.stringTable
  }

  private func string(_ index: Int64, _ what: @autoclosure () -> String) throws(Failure) -> String {
    guard index >= 0, index < Int64(strings.count) else {
      throw Failure(
        reason: "\(what()) refers to string \(index), but the table has \(strings.count)")
    }
    return strings[Int(index)]
  }

  func makeProfile() throws(Failure) -> Profile {
    guard strings.first == "" else {
      throw Failure(
        reason: strings.isEmpty
          ? "no string table (empty or not a pprof file)" : "string_table[0] is not empty")
    }
    guard !message.sampleType.isEmpty || message.sample.isEmpty else {
      throw Failure(reason: "samples present but no sample_type")
    }
    let locationsByID = try resolveLocations(
      mappings: try resolveMappings(), functions: try resolveFunctions())

    let countIndex = try countValueIndex()
    let sampleTypeCount = message.sampleType.count
    var profileSamples: [ProfileSample] = []
    profileSamples.reserveCapacity(message.sample.count)
    for (sampleIndex, raw) in message.sample.enumerated() {
      guard raw.value.count == sampleTypeCount else {
        throw Failure(
          reason:
            "sample \(sampleIndex) has \(raw.value.count) values for \(sampleTypeCount) sample types"
        )
      }
      var stack: [ResolvedLocation] = []
      stack.reserveCapacity(raw.locationID.count)
      for id in raw.locationID {
        guard let location = locationsByID[id] else {
          throw Failure(reason: "sample \(sampleIndex) refers to missing location \(id)")
        }
        stack.append(location)
      }
      var sample = ProfileSample(stack: stack, pid: 0, tid: 0, threadName: "", count: 0)
      switch countIndex {
      case .samples(let index): sample.count = raw.value[index]
      case .cpuTime(let index): sample.count = raw.value[index] / message.period
      }
      try applyLabels(raw.label, to: &sample)
      profileSamples.append(sample)
    }

    return Profile(
      samples: profileSamples, periodNanos: message.period, startTimeNanos: message.timeNanos,
      durationNanos: message.durationNanos,
      comments: try message.comment.map { index throws(Failure) in try string(index, "comment") })
  }

  private func resolveMappings() throws(Failure) -> [UInt64: Mapping] {
    var mappingsByID: [UInt64: Mapping] = [:]
    for raw in message.mapping {
      guard raw.id != 0, mappingsByID[raw.id] == nil else {
        throw Failure(reason: "mapping id \(raw.id) is zero or repeated")
      }
      let buildID = BuildID(hex: try string(raw.buildID, "mapping \(raw.id) build_id"))
      // kernelMappingName starts with "[kernel", so the shared naming rules cover it.
      let (kind, path) = MappingKind.classify(
        profileFileName: try string(raw.filename, "mapping \(raw.id) filename"))
      mappingsByID[raw.id] = Mapping(
        start: raw.memoryStart, limit: raw.memoryLimit, fileOffset: raw.fileOffset, path: path,
        buildID: buildID.flatMap { $0.bytes.isEmpty ? nil : $0 }, kind: kind)
    }
    return mappingsByID
  }

  private func resolveFunctions() throws(Failure) -> [UInt64: SourceFrame] {
    var functionsByID: [UInt64: SourceFrame] = [:]
    for raw in message.function {
      guard raw.id != 0, functionsByID[raw.id] == nil else {
        throw Failure(reason: "function id \(raw.id) is zero or repeated")
      }
      let name = try string(raw.name, "function \(raw.id) name")
      let systemName = try string(raw.systemName, "function \(raw.id) system_name")
      let file = try string(raw.filename, "function \(raw.id) filename")
      functionsByID[raw.id] = SourceFrame(
        function: name, systemName: systemName.isEmpty || systemName == name ? nil : systemName,
        file: file.isEmpty ? nil : file)
    }
    return functionsByID
  }

  private func resolveLocations(
    mappings mappingsByID: [UInt64: Mapping], functions functionsByID: [UInt64: SourceFrame]
  ) throws(Failure) -> [UInt64: ResolvedLocation] {
    var locationsByID: [UInt64: ResolvedLocation] = [:]
    for raw in message.location {
      guard raw.id != 0, locationsByID[raw.id] == nil else {
        throw Failure(reason: "location id \(raw.id) is zero or repeated")
      }
      var mapping: Mapping?
      if raw.mappingID != 0 {
        guard let found = mappingsByID[raw.mappingID] else {
          throw Failure(reason: "location \(raw.id) refers to missing mapping \(raw.mappingID)")
        }
        mapping = found
      }
      var frames: [SourceFrame] = []
      for line in raw.line {
        guard var frame = functionsByID[line.functionID] else {
          throw Failure(
            reason: "location \(raw.id) refers to missing function \(line.functionID)")
        }
        frame.line = Int(clamping: line.line)
        frame.column = Int(clamping: line.column)
        frames.append(frame)
      }
      var location = ResolvedLocation(address: raw.address, mapping: mapping, frames: frames)
      // The encoder names an unresolved address by where it is; seeing exactly that name means "unknown".
      let unresolved = ResolvedLocation(address: raw.address, mapping: mapping, frames: [])
      if frames.isEmpty
        || (frames.count == 1 && frames[0].function == unresolved.safeDisplayName
          && frames[0].file == nil)
      {
        location = unresolved
        location.unknownReason = frames.isEmpty ? "not symbolized in the pprof file" : nil
      }
      locationsByID[raw.id] = location
    }
    return locationsByID
  }

  private enum CountSource {
    case samples(Int)
    case cpuTime(Int)
  }

  /// Profiles from other tools may carry only CPU time; then the count is derived from the period.
  private func countValueIndex() throws(Failure) -> CountSource {
    let names = try message.sampleType.map { type throws(Failure) in
      (try string(type.type, "sample_type"), try string(type.unit, "sample_type unit"))
    }
    if let index = names.firstIndex(where: { $0.0 == "samples" }) { return .samples(index) }
    if message.period > 0, let index = names.firstIndex(where: { $0.1 == "nanoseconds" }) {
      return .cpuTime(index)
    }
    return .samples(0)
  }

  private func applyLabels(_ labels: [Perftools_Profiles_Label], to sample: inout ProfileSample)
    throws(Failure)
  {
    var traceID: [UInt8]?
    var spanID: [UInt8]?
    var spanName: String?
    for label in labels {
      switch try string(label.key, "label key") {
      case PprofLabel.pid: sample.pid = Int32(truncatingIfNeeded: label.num)
      case PprofLabel.tid: sample.tid = Int32(truncatingIfNeeded: label.num)
      case PprofLabel.threadName: sample.threadName = try string(label.str, "thread_name label")
      case PprofLabel.traceID: traceID = HexCoding.decode(try string(label.str, "trace_id label"))
      case PprofLabel.spanID: spanID = HexCoding.decode(try string(label.str, "span_id label"))
      case PprofLabel.spanName: spanName = try string(label.str, "span_name label")
      default: continue
      }
    }
    // Ids of the wrong length are not W3C ids; leave the sample without a span rather than invent one.
    if let traceID, traceID.count == 16, let spanID, spanID.count == 8 {
      sample.span = SpanContext(traceID: traceID, spanID: spanID, name: spanName)
    }
  }
}
