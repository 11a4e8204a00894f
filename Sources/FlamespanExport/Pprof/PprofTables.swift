import FlamespanModel
import FlamespanOTLP

/// The deduplicated tables of a pprof profile under construction. Ids are 1-based (0 means "none").
///
/// Strings are numbered in the order they are first asked for, and the encoder asks in a fixed order
/// (sample types, label keys, then each sample's names, then comments, mapping file names and build
/// ids), so the same profile always gives the same bytes.
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

  /// A native location is its address in its mapping. One with no mapping (an interpreter's frame, a
  /// marker frame) has no address to tell it apart: it is its frames.
  private struct LocationKey: Hashable {
    var mappingID: UInt64
    var address: UInt64
    var frames: [SourceFrame]?
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

  /// Table entries per serialized fragment: small enough that a fragment's message structs cost little
  /// next to the output, large enough that the per-fragment overhead does not show.
  private static let entriesPerFragment = 4_096
  /// Strings can be long (C++ and Rust names), so string fragments are also cut by size.
  private static let stringBytesPerFragment = 4 << 20

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
    let key = LocationKey(
      mappingID: mappingID, address: location.address,
      frames: mappingID == 0 && !location.frames.isEmpty ? location.frames : nil)
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
      // An interpreter's frame has no linker name, and copying its name there hurts: go tool pprof
      // demangles system names, and reads Python's `<module>` or `<lambda>` as C++ template arguments,
      // which it strips to nothing.
      let noSystemName: Int64? = location.frameType == .cpython ? 0 : nil
      for frame in location.frames {
        let name = string(frame.function)
        let key = FunctionKey(
          name: name, systemName: frame.systemName.map { string($0) } ?? noSystemName ?? name,
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
  private func mainExecutableFirst() -> [UInt64] {
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

  /// Appends the mappings, locations, functions and the string table, in that order (the order of
  /// their field numbers, which is how a whole `Profile` message would be written too).
  mutating func appendTables(to output: inout PprofOutput) {
    let mappingIDs = mainExecutableFirst()
    appendMappings(to: &output, ids: mappingIDs)
    appendLocations(to: &output, mappingIDs: mappingIDs)
    appendFunctions(to: &output)
    appendStrings(to: &output)
  }

  private mutating func appendMappings(to output: inout PprofOutput, ids: [UInt64]) {
    // Interned before the string table is written, which happens last.
    let filenames = mappings.map { record in string(record.mapping.profileFileName) }
    let buildIDs = mappings.map { record in record.mapping.buildID.map { string($0.hex) } ?? 0 }
    let order = mappings.indices.sorted(by: { ids[$0] < ids[$1] })
    let messages = order.lazy.map { [mappings] index in
      let record = mappings[index]
      var message = Perftools_Profiles_Mapping()
      message.id = ids[index]
      message.memoryStart = record.mapping.start
      message.memoryLimit = record.mapping.limit
      message.fileOffset = record.mapping.fileOffset
      message.filename = filenames[index]
      message.buildID = buildIDs[index]
      // These tell readers the names are final, so they do not try to symbolize the file again.
      message.hasFunctions_p = record.symbolized
      message.hasFilenames_p = record.symbolized
      message.hasLineNumbers_p = record.symbolized
      message.hasInlineFrames_p = record.symbolized
      return message
    }
    output.appendTable(messages, into: \.mapping, perFragment: Self.entriesPerFragment)
  }

  private func appendLocations(to output: inout PprofOutput, mappingIDs: [UInt64]) {
    let messages = locations.enumerated().lazy.map { index, record in
      var message = Perftools_Profiles_Location()
      message.id = UInt64(index + 1)
      message.mappingID = record.mappingID == 0 ? 0 : mappingIDs[Int(record.mappingID - 1)]
      message.address = record.address
      message.line = record.lines.map { line in
        var lineMessage = Perftools_Profiles_Line()
        lineMessage.functionID = line.functionID
        lineMessage.line = line.line
        lineMessage.column = line.column
        return lineMessage
      }
      return message
    }
    output.appendTable(messages, into: \.location, perFragment: Self.entriesPerFragment)
  }

  private func appendFunctions(to output: inout PprofOutput) {
    let messages = functions.enumerated().lazy.map { index, function in
      var message = Perftools_Profiles_Function()
      message.id = UInt64(index + 1)
      message.name = function.name
      message.systemName = function.systemName
      message.filename = function.filename
      return message
    }
    output.appendTable(messages, into: \.function, perFragment: Self.entriesPerFragment)
  }

  private func appendStrings(to output: inout PprofOutput) {
    var fragment = Perftools_Profiles_Profile()
    var fragmentBytes = 0
    for string in strings {
      fragment.stringTable.append(string)
      fragmentBytes += string.utf8.count
      if fragment.stringTable.count == Self.entriesPerFragment
        || fragmentBytes >= Self.stringBytesPerFragment
      {
        output.append(fragment)
        fragment.stringTable.removeAll(keepingCapacity: true)
        fragmentBytes = 0
      }
    }
    // strings always holds "" at index 0, so there is at least one entry to write.
    if !fragment.stringTable.isEmpty { output.append(fragment) }
  }
}
