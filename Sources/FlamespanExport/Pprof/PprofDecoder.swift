import FlamespanModel

/// Reads a pprof profile (gzipped or raw protobuf) back into a `Profile`: stacks with their inline chains,
/// mappings, counts, and the pid/tid/thread/span labels Flamespan writes.
///
/// Input is untrusted: every length and every id reference is checked, and problems become
/// `ExportError(code: .malformedProfile)` naming the byte offset.
public enum PprofDecoder {
  public static func decode(_ bytes: [UInt8]) throws(ExportError) -> Profile {
    let protobuf = Gzip.isGzip(bytes) ? try Gzip.decompress(bytes) : bytes
    do {
      var parsed = try ParsedProfile(protobuf[...])
      return try parsed.makeProfile()
    } catch {
      throw ExportError(
        code: .malformedProfile,
        message: "not a valid pprof profile at byte \(error.offset): \(error.reason)")
    }
  }
}

/// The messages of a pprof file as written, before ids and string indexes are resolved.
private struct ParsedProfile {
  typealias Failure = ProtobufReader.Failure

  struct RawLabel {
    var key: UInt64
    var str: UInt64 = 0
    var num: Int64 = 0
  }
  struct RawSample {
    var locationIDs: [UInt64] = []
    var values: [Int64] = []
    var labels: [RawLabel] = []
  }
  struct RawLine {
    var functionID: UInt64 = 0
    var line: Int64 = 0
    var column: Int64 = 0
  }
  struct RawLocation {
    var id: UInt64 = 0
    var mappingID: UInt64 = 0
    var address: UInt64 = 0
    var lines: [RawLine] = []
  }
  struct RawFunction {
    var id: UInt64 = 0
    var name: UInt64 = 0
    var systemName: UInt64 = 0
    var filename: UInt64 = 0
  }
  struct RawMapping {
    var id: UInt64 = 0
    var start: UInt64 = 0
    var limit: UInt64 = 0
    var fileOffset: UInt64 = 0
    var filename: UInt64 = 0
    var buildID: UInt64 = 0
  }

  var sampleTypes: [(type: UInt64, unit: UInt64)] = []
  var samples: [RawSample] = []
  var mappings: [RawMapping] = []
  var locations: [RawLocation] = []
  var functions: [RawFunction] = []
  var strings: [String] = []
  var timeNanos: Int64 = 0
  var durationNanos: Int64 = 0
  var period: Int64 = 0
  var comments: [UInt64] = []

  init(_ bytes: ArraySlice<UInt8>) throws(Failure) {
    var reader = ProtobufReader(bytes)
    while let (field, value) = try reader.next() {
      switch field {
      case PprofField.Profile.sampleType:
        sampleTypes.append(try Self.valueType(value.message(field: field)))
      case PprofField.Profile.sample: samples.append(try Self.sample(value.message(field: field)))
      case PprofField.Profile.mapping:
        mappings.append(try Self.mapping(value.message(field: field)))
      case PprofField.Profile.location:
        locations.append(try Self.location(value.message(field: field)))
      case PprofField.Profile.function:
        functions.append(try Self.function(value.message(field: field)))
      case PprofField.Profile.stringTable: strings.append(try value.string(field: field))
      case PprofField.Profile.timeNanos:
        timeNanos = Int64(bitPattern: try value.integer(field: field))
      case PprofField.Profile.durationNanos:
        durationNanos = Int64(bitPattern: try value.integer(field: field))
      case PprofField.Profile.period: period = Int64(bitPattern: try value.integer(field: field))
      case PprofField.Profile.comment: comments += try ProtobufReader.integers(value)
      default: continue  // fields we do not use (drop_frames, period_type, doc_url, ...) are skipped
      }
    }
  }

  private static func valueType(_ bytes: ArraySlice<UInt8>) throws(Failure) -> (
    type: UInt64, unit: UInt64
  ) {
    var reader = ProtobufReader(bytes)
    var result: (type: UInt64, unit: UInt64) = (0, 0)
    while let (field, value) = try reader.next() {
      switch field {
      case PprofField.ValueType.type: result.type = try value.integer(field: field)
      case PprofField.ValueType.unit: result.unit = try value.integer(field: field)
      default: continue
      }
    }
    return result
  }

  private static func sample(_ bytes: ArraySlice<UInt8>) throws(Failure) -> RawSample {
    var reader = ProtobufReader(bytes)
    var sample = RawSample()
    while let (field, value) = try reader.next() {
      switch field {
      case PprofField.Sample.locationID: sample.locationIDs += try ProtobufReader.integers(value)
      case PprofField.Sample.value:
        sample.values += try ProtobufReader.integers(value).map { Int64(bitPattern: $0) }
      case PprofField.Sample.label: sample.labels.append(try label(value.message(field: field)))
      default: continue
      }
    }
    return sample
  }

  private static func label(_ bytes: ArraySlice<UInt8>) throws(Failure) -> RawLabel {
    var reader = ProtobufReader(bytes)
    var label = RawLabel(key: 0)
    while let (field, value) = try reader.next() {
      switch field {
      case PprofField.Label.key: label.key = try value.integer(field: field)
      case PprofField.Label.str: label.str = try value.integer(field: field)
      case PprofField.Label.num: label.num = Int64(bitPattern: try value.integer(field: field))
      default: continue
      }
    }
    return label
  }

  private static func mapping(_ bytes: ArraySlice<UInt8>) throws(Failure) -> RawMapping {
    var reader = ProtobufReader(bytes)
    var mapping = RawMapping()
    while let (field, value) = try reader.next() {
      switch field {
      case PprofField.Mapping.id: mapping.id = try value.integer(field: field)
      case PprofField.Mapping.memoryStart: mapping.start = try value.integer(field: field)
      case PprofField.Mapping.memoryLimit: mapping.limit = try value.integer(field: field)
      case PprofField.Mapping.fileOffset: mapping.fileOffset = try value.integer(field: field)
      case PprofField.Mapping.filename: mapping.filename = try value.integer(field: field)
      case PprofField.Mapping.buildID: mapping.buildID = try value.integer(field: field)
      default: continue
      }
    }
    return mapping
  }

  private static func location(_ bytes: ArraySlice<UInt8>) throws(Failure) -> RawLocation {
    var reader = ProtobufReader(bytes)
    var location = RawLocation()
    while let (field, value) = try reader.next() {
      switch field {
      case PprofField.Location.id: location.id = try value.integer(field: field)
      case PprofField.Location.mappingID: location.mappingID = try value.integer(field: field)
      case PprofField.Location.address: location.address = try value.integer(field: field)
      case PprofField.Location.line: location.lines.append(try line(value.message(field: field)))
      default: continue
      }
    }
    return location
  }

  private static func line(_ bytes: ArraySlice<UInt8>) throws(Failure) -> RawLine {
    var reader = ProtobufReader(bytes)
    var line = RawLine()
    while let (field, value) = try reader.next() {
      switch field {
      case PprofField.Line.functionID: line.functionID = try value.integer(field: field)
      case PprofField.Line.line: line.line = Int64(bitPattern: try value.integer(field: field))
      case PprofField.Line.column: line.column = Int64(bitPattern: try value.integer(field: field))
      default: continue
      }
    }
    return line
  }

  private static func function(_ bytes: ArraySlice<UInt8>) throws(Failure) -> RawFunction {
    var reader = ProtobufReader(bytes)
    var function = RawFunction()
    while let (field, value) = try reader.next() {
      switch field {
      case PprofField.Function.id: function.id = try value.integer(field: field)
      case PprofField.Function.name: function.name = try value.integer(field: field)
      case PprofField.Function.systemName: function.systemName = try value.integer(field: field)
      case PprofField.Function.filename: function.filename = try value.integer(field: field)
      default: continue
      }
    }
    return function
  }

  // MARK: Resolving ids and strings

  private func string(_ index: UInt64, _ what: @autoclosure () -> String) throws(Failure) -> String
  {
    guard index < UInt64(strings.count) else {
      throw Failure(
        offset: 0, reason: "\(what()) refers to string \(index), but the table has \(strings.count)"
      )
    }
    return strings[Int(index)]
  }

  mutating func makeProfile() throws(Failure) -> Profile {
    guard strings.first == "" else {
      throw Failure(
        offset: 0,
        reason: strings.isEmpty
          ? "no string table (empty or not a pprof file)" : "string_table[0] is not empty")
    }
    guard !sampleTypes.isEmpty || samples.isEmpty else {
      throw Failure(offset: 0, reason: "samples present but no sample_type")
    }

    var mappingsByID: [UInt64: Mapping] = [:]
    for raw in mappings {
      guard raw.id != 0, mappingsByID[raw.id] == nil else {
        throw Failure(offset: 0, reason: "mapping id \(raw.id) is zero or repeated")
      }
      let buildIDText = try string(raw.buildID, "mapping \(raw.id) build_id")
      mappingsByID[raw.id] = Self.mapping(
        raw, filename: try string(raw.filename, "mapping \(raw.id) filename"),
        buildID: BuildID(hex: buildIDText))
    }

    var functionsByID: [UInt64: SourceFrame] = [:]
    for raw in functions {
      guard raw.id != 0, functionsByID[raw.id] == nil else {
        throw Failure(offset: 0, reason: "function id \(raw.id) is zero or repeated")
      }
      let name = try string(raw.name, "function \(raw.id) name")
      let systemName = try string(raw.systemName, "function \(raw.id) system_name")
      let file = try string(raw.filename, "function \(raw.id) filename")
      functionsByID[raw.id] = SourceFrame(
        function: name, systemName: systemName.isEmpty || systemName == name ? nil : systemName,
        file: file.isEmpty ? nil : file)
    }

    var locationsByID: [UInt64: ResolvedLocation] = [:]
    for raw in locations {
      guard raw.id != 0, locationsByID[raw.id] == nil else {
        throw Failure(offset: 0, reason: "location id \(raw.id) is zero or repeated")
      }
      var mapping: Mapping?
      if raw.mappingID != 0 {
        guard let found = mappingsByID[raw.mappingID] else {
          throw Failure(
            offset: 0, reason: "location \(raw.id) refers to missing mapping \(raw.mappingID)")
        }
        mapping = found
      }
      var frames: [SourceFrame] = []
      for line in raw.lines {
        guard var frame = functionsByID[line.functionID] else {
          throw Failure(
            offset: 0, reason: "location \(raw.id) refers to missing function \(line.functionID)")
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

    let countIndex = try countValueIndex()
    var profileSamples: [ProfileSample] = []
    profileSamples.reserveCapacity(samples.count)
    for (sampleIndex, raw) in samples.enumerated() {
      guard raw.values.count == sampleTypes.count else {
        throw Failure(
          offset: 0,
          reason:
            "sample \(sampleIndex) has \(raw.values.count) values for \(sampleTypes.count) sample types"
        )
      }
      var stack: [ResolvedLocation] = []
      stack.reserveCapacity(raw.locationIDs.count)
      for id in raw.locationIDs {
        guard let location = locationsByID[id] else {
          throw Failure(offset: 0, reason: "sample \(sampleIndex) refers to missing location \(id)")
        }
        stack.append(location)
      }
      var sample = ProfileSample(stack: stack, pid: 0, tid: 0, threadName: "", count: 0)
      switch countIndex {
      case .samples(let index): sample.count = raw.values[index]
      case .cpuTime(let index): sample.count = raw.values[index] / period
      }
      try applyLabels(raw.labels, to: &sample)
      profileSamples.append(sample)
    }

    return Profile(
      samples: profileSamples, periodNanos: period, startTimeNanos: timeNanos,
      durationNanos: durationNanos,
      comments: try comments.map { index throws(Failure) in try string(index, "comment") })
  }

  private enum CountSource {
    case samples(Int)
    case cpuTime(Int)
  }

  /// Profiles from other tools may carry only CPU time; then the count is derived from the period.
  private func countValueIndex() throws(Failure) -> CountSource {
    let names = try sampleTypes.map { type throws(Failure) in
      (try string(type.type, "sample_type"), try string(type.unit, "sample_type unit"))
    }
    if let index = names.firstIndex(where: { $0.0 == "samples" }) { return .samples(index) }
    if period > 0, let index = names.firstIndex(where: { $0.1 == "nanoseconds" }) {
      return .cpuTime(index)
    }
    return .samples(0)
  }

  private func applyLabels(_ labels: [RawLabel], to sample: inout ProfileSample) throws(Failure) {
    var traceID: [UInt8]?
    var spanID: [UInt8]?
    var spanName: String?
    for label in labels {
      let key = try string(label.key, "label key")
      switch key {
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

  private static func mapping(_ raw: RawMapping, filename: String, buildID: BuildID?) -> Mapping {
    // kernelMappingName starts with "[kernel", so the shared rules cover it.
    let (kind, path) = MappingKind.classify(profileFileName: filename)
    return Mapping(
      start: raw.start, limit: raw.limit, fileOffset: raw.fileOffset, path: path,
      buildID: buildID.flatMap { $0.bytes.isEmpty ? nil : $0 }, kind: kind)
  }
}
