import FlamespanModel

/// Encodes a `Profile` as an uncompressed pprof protobuf (`perftools.profiles.Profile`).
///
/// Strings, functions, locations and mappings are deduplicated through hash tables, so the cost is linear
/// in the number of stack entries.
public enum PprofEncoder {
  public static func encode(_ profile: Profile) -> [UInt8] {
    var tables = PprofTables()
    let samplesType = (tables.string("samples"), tables.string("count"))
    let cpuType = (tables.string("cpu"), tables.string("nanoseconds"))
    let labelKeys = (
      pid: tables.string(PprofLabel.pid), tid: tables.string(PprofLabel.tid),
      threadName: tables.string(PprofLabel.threadName), traceID: tables.string(PprofLabel.traceID),
      spanID: tables.string(PprofLabel.spanID), spanName: tables.string(PprofLabel.spanName)
    )

    var samples = ProtobufWriter(capacity: profile.samples.count * 64)
    var locationIDs: [UInt64] = []
    for sample in profile.samples {
      locationIDs.removeAll(keepingCapacity: true)
      for location in sample.stack { locationIDs.append(tables.locationID(for: location)) }
      let threadName = tables.string(sample.threadName)
      var span: (traceID: Int64, spanID: Int64, name: Int64?)?
      if let context = sample.span {
        span = (
          tables.string(context.traceIDHex), tables.string(context.spanIDHex),
          context.name.map { tables.string($0) }
        )
      }
      samples.message(PprofField.Profile.sample) { out in
        out.packed(PprofField.Sample.locationID, locationIDs)
        out.packed(
          PprofField.Sample.value,
          [
            UInt64(bitPattern: sample.count),
            UInt64(bitPattern: sample.count &* profile.periodNanos),
          ])
        out.numberLabel(labelKeys.pid, Int64(sample.pid))
        out.numberLabel(labelKeys.tid, Int64(sample.tid))
        out.stringLabel(labelKeys.threadName, threadName)
        if let span {
          out.stringLabel(labelKeys.traceID, span.traceID)
          out.stringLabel(labelKeys.spanID, span.spanID)
          if let name = span.name { out.stringLabel(labelKeys.spanName, name) }
        }
      }
    }
    let comments = profile.comments.map { UInt64(tables.string($0)) }

    var out = ProtobufWriter(capacity: samples.bytes.count + tables.estimatedSize)
    for (type, unit) in [samplesType, cpuType] {
      out.message(PprofField.Profile.sampleType) { valueType in
        valueType.field(PprofField.ValueType.type, type)
        valueType.field(PprofField.ValueType.unit, unit)
      }
    }
    out.append(samples)
    let mappingIDs = tables.mainExecutableFirst()
    tables.writeMappings(to: &out, ids: mappingIDs)
    tables.writeLocations(to: &out, mappingIDs: mappingIDs)
    tables.writeFunctions(to: &out)
    for string in tables.strings { out.string(PprofField.Profile.stringTable, string) }
    out.field(PprofField.Profile.timeNanos, profile.startTimeNanos)
    out.field(PprofField.Profile.durationNanos, profile.durationNanos)
    out.message(PprofField.Profile.periodType) { valueType in
      valueType.field(PprofField.ValueType.type, cpuType.0)
      valueType.field(PprofField.ValueType.unit, cpuType.1)
    }
    out.field(PprofField.Profile.period, profile.periodNanos)
    out.packed(PprofField.Profile.comment, comments)
    return out.bytes
  }
}

extension ProtobufWriter {
  fileprivate mutating func numberLabel(_ key: Int64, _ value: Int64) {
    message(PprofField.Sample.label) { label in
      label.field(PprofField.Label.key, key)
      // Written even when zero so that `pid: 0` (the idle task) is still a label, not a missing one.
      label.forcedVarint(PprofField.Label.num, UInt64(bitPattern: value))
    }
  }

  fileprivate mutating func stringLabel(_ key: Int64, _ value: Int64) {
    message(PprofField.Sample.label) { label in
      label.field(PprofField.Label.key, key)
      label.field(PprofField.Label.str, value)
    }
  }
}

/// The deduplicated tables of a pprof profile under construction. Ids are 1-based (0 means "none").
struct PprofTables {
  private(set) var strings: [String] = [""]
  private var stringIndex: [String: Int64] = ["": 0]

  private struct MappingRecord {
    var mapping: Mapping
    var symbolized: Bool
  }
  /// The kernel and its modules become one mapping, as perf and pprof readers expect.
  private enum MappingKey: Hashable {
    case kernel
    case process(Mapping)
  }
  private var mappings: [MappingRecord] = []
  private var mappingIndex: [MappingKey: UInt64] = [:]

  private struct LocationKey: Hashable {
    var mappingID: UInt64
    var address: UInt64
  }
  private struct LineRecord {
    var functionID: UInt64
    var line: Int64
    var column: Int64
  }
  private struct LocationRecord {
    var mappingID: UInt64
    var address: UInt64
    var lines: [LineRecord]
  }
  private var locations: [LocationRecord] = []
  private var locationIndex: [LocationKey: UInt64] = [:]

  private struct FunctionKey: Hashable {
    var name: Int64
    var systemName: Int64
    var filename: Int64
  }
  private var functions: [FunctionKey] = []
  private var functionIndex: [FunctionKey: UInt64] = [:]

  var estimatedSize: Int {
    strings.count * 24 + locations.count * 24 + functions.count * 12 + mappings.count * 64
  }

  mutating func string(_ text: String) -> Int64 {
    if let index = stringIndex[text] { return index }
    let index = Int64(strings.count)
    strings.append(text)
    stringIndex[text] = index
    return index
  }

  mutating func locationID(for location: ResolvedLocation) -> UInt64 {
    let mappingID =
      location.mapping.map { self.mappingID(for: $0, symbolized: !location.frames.isEmpty) } ?? 0
    let key = LocationKey(mappingID: mappingID, address: location.address)
    if let id = locationIndex[key] { return id }

    var lines: [LineRecord] = []
    if location.frames.isEmpty {
      // Readers show the function name; for an unresolved address that must be where it is, not a guess.
      let name = string(location.safeDisplayName)
      lines.append(
        LineRecord(
          functionID: functionID(FunctionKey(name: name, systemName: name, filename: 0)), line: 0,
          column: 0))
    } else {
      for frame in location.frames {
        let name = string(frame.function)
        let key = FunctionKey(
          name: name, systemName: frame.systemName.map { string($0) } ?? name,
          filename: frame.file.map { string($0) } ?? 0)
        lines.append(
          LineRecord(
            functionID: functionID(key), line: Int64(frame.line), column: Int64(frame.column)))
      }
    }
    locations.append(LocationRecord(mappingID: mappingID, address: location.address, lines: lines))
    let id = UInt64(locations.count)
    locationIndex[key] = id
    return id
  }

  private mutating func mappingID(for mapping: Mapping, symbolized: Bool) -> UInt64 {
    let key: MappingKey = mapping.kind == .kernel ? .kernel : .process(mapping)
    if let id = mappingIndex[key] {
      if symbolized { mappings[Int(id - 1)].symbolized = true }
      return id
    }
    var stored = mapping
    if mapping.kind == .kernel {
      stored = Mapping(
        start: Mapping.kernel.start, limit: Mapping.kernel.limit, fileOffset: 0,
        path: kernelMappingName,
        buildID: mapping.buildID, kind: .kernel)
    }
    mappings.append(MappingRecord(mapping: stored, symbolized: symbolized))
    let id = UInt64(mappings.count)
    mappingIndex[key] = id
    return id
  }

  private mutating func functionID(_ key: FunctionKey) -> UInt64 {
    if let id = functionIndex[key] { return id }
    functions.append(key)
    let id = UInt64(functions.count)
    functionIndex[key] = id
    return id
  }

  /// The id each mapping is written under. Readers take the first mapping as the profiled program (its
  /// name heads `go tool pprof` output), so the first program file that is not a shared library moves to
  /// the front; the rest keep their order.
  func mainExecutableFirst() -> [UInt64] {
    var ids = (0..<mappings.count).map { UInt64($0 + 1) }
    let main = mappings.firstIndex { record in
      let kind = record.mapping.kind
      let name = record.mapping.path.split(separator: "/").last ?? ""
      return (kind == .file || kind == .deletedFile) && !name.contains(".so")
    }
    if let main, main > 0 {
      for index in 0..<main { ids[index] += 1 }
      ids[main] = 1
    }
    return ids
  }

  mutating func writeMappings(to out: inout ProtobufWriter, ids: [UInt64]) {
    // Interning filenames first: the string table is written after this, so new strings are fine.
    let filenames = mappings.map { record in string(record.mapping.profileFileName) }
    let buildIDs = mappings.map { record in record.mapping.buildID.map { string($0.hex) } ?? 0 }
    for index in mappings.indices.sorted(by: { ids[$0] < ids[$1] }) {
      let record = mappings[index]
      out.message(PprofField.Profile.mapping) { m in
        m.field(PprofField.Mapping.id, ids[index])
        m.field(PprofField.Mapping.memoryStart, record.mapping.start)
        m.field(PprofField.Mapping.memoryLimit, record.mapping.limit)
        m.field(PprofField.Mapping.fileOffset, record.mapping.fileOffset)
        m.field(PprofField.Mapping.filename, filenames[index])
        m.field(PprofField.Mapping.buildID, buildIDs[index])
        // These tell readers the names are final, so they do not try to symbolize the file again.
        m.field(PprofField.Mapping.hasFunctions, record.symbolized)
        m.field(PprofField.Mapping.hasFilenames, record.symbolized)
        m.field(PprofField.Mapping.hasLineNumbers, record.symbolized)
        m.field(PprofField.Mapping.hasInlineFrames, record.symbolized)
      }
    }
  }

  func writeLocations(to out: inout ProtobufWriter, mappingIDs: [UInt64]) {
    for (index, record) in locations.enumerated() {
      out.message(PprofField.Profile.location) { l in
        l.field(PprofField.Location.id, UInt64(index + 1))
        l.field(
          PprofField.Location.mappingID,
          record.mappingID == 0 ? 0 : mappingIDs[Int(record.mappingID - 1)])
        l.field(PprofField.Location.address, record.address)
        for line in record.lines {
          l.message(PprofField.Location.line) { lineOut in
            lineOut.field(PprofField.Line.functionID, line.functionID)
            lineOut.field(PprofField.Line.line, line.line)
            lineOut.field(PprofField.Line.column, line.column)
          }
        }
      }
    }
  }

  func writeFunctions(to out: inout ProtobufWriter) {
    for (index, function) in functions.enumerated() {
      out.message(PprofField.Profile.function) { f in
        f.field(PprofField.Function.id, UInt64(index + 1))
        f.field(PprofField.Function.name, function.name)
        f.field(PprofField.Function.systemName, function.systemName)
        f.field(PprofField.Function.filename, function.filename)
      }
    }
  }
}
