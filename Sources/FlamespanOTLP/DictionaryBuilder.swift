import FlamespanModel
import Foundation

/// The shared `ProfilesDictionary` under construction. Every table starts with its zero value, so index 0
/// means "none", and every entry is deduplicated through a hash table, so the cost stays linear in the
/// number of stack entries.
///
/// Indexes are Int32 on the wire; `finish()` refuses tables that outgrow that before anything is written.
struct DictionaryBuilder {
  private var tables = ProtoDictionary()
  private var stringIndex: [String: Int32] = ["": 0]
  private var attributeIndex: [AttributeKey: Int32] = [:]
  private var mappingIndex: [Mapping: Int32] = [:]
  private var locationIndex: [ResolvedLocation: Int32] = [:]
  private var functionIndex: [FunctionKey: Int32] = [:]
  private var linkIndex: [LinkKey: Int32] = [:]
  private var stackIndex: [[Int32]: Int32] = [[]: 0]

  private struct AttributeKey: Hashable {
    var key: Int32
    var value: ProtoAnyValue
  }
  private struct FunctionKey: Hashable {
    var name: Int32
    var systemName: Int32
    var filename: Int32
  }
  private struct LinkKey: Hashable {
    var traceID: [UInt8]
    var spanID: [UInt8]
  }

  init() {
    tables.stringTable = [""]
    tables.attributeTable = [ProtoAttribute()]
    tables.mappingTable = [ProtoMapping()]
    tables.locationTable = [ProtoLocation()]
    tables.functionTable = [ProtoFunction()]
    tables.linkTable = [ProtoLink()]
    tables.stackTable = [ProtoStack()]
  }

  mutating func string(_ text: String) -> Int32 {
    if let index = stringIndex[text] { return index }
    let index = Int32(truncatingIfNeeded: tables.stringTable.count)
    tables.stringTable.append(text)
    stringIndex[text] = index
    return index
  }

  mutating func valueType(_ type: String, _ unit: String) -> ProtoValueType {
    var valueType = ProtoValueType()
    valueType.typeStrindex = string(type)
    valueType.unitStrindex = string(unit)
    return valueType
  }

  mutating func attribute(_ key: String, _ value: ProtoAnyValue) -> Int32 {
    let lookup = AttributeKey(key: string(key), value: value)
    if let index = attributeIndex[lookup] { return index }
    var attribute = ProtoAttribute()
    attribute.keyStrindex = lookup.key
    attribute.value = value
    let index = Int32(truncatingIfNeeded: tables.attributeTable.count)
    tables.attributeTable.append(attribute)
    attributeIndex[lookup] = index
    return index
  }

  mutating func link(_ span: SpanContext) -> Int32 {
    let key = LinkKey(traceID: span.traceID, spanID: span.spanID)
    if let index = linkIndex[key] { return index }
    var link = ProtoLink()
    link.traceID = Data(span.traceID)
    link.spanID = Data(span.spanID)
    let index = Int32(truncatingIfNeeded: tables.linkTable.count)
    tables.linkTable.append(link)
    linkIndex[key] = index
    return index
  }

  mutating func stack(_ locations: [ResolvedLocation]) -> Int32 {
    let indices = locations.map { location(for: $0) }
    if let index = stackIndex[indices] { return index }
    var stack = ProtoStack()
    stack.locationIndices = indices
    let index = Int32(truncatingIfNeeded: tables.stackTable.count)
    tables.stackTable.append(stack)
    stackIndex[indices] = index
    return index
  }

  private mutating func location(for resolved: ResolvedLocation) -> Int32 {
    if let index = locationIndex[resolved] { return index }
    var location = ProtoLocation()
    location.address = resolved.address
    if let mapping = resolved.mapping { location.mappingIndex = self.mapping(for: mapping) }
    // Lines innermost first, exactly as the symbolizer gives them. An unresolved address gets no line at
    // all, which OTLP readers take as "not symbolized" rather than as a function with a made-up name.
    for frame in resolved.frames {
      var line = ProtoLine()
      line.functionIndex = function(for: frame)
      line.line = Int64(frame.line)
      line.column = Int64(frame.column)
      location.lines.append(line)
    }
    let frameType =
      resolved.frameType?.rawValue ?? (resolved.mapping?.kind == .kernel ? "kernel" : "native")
    location.attributeIndices = [attribute(OTLPAttribute.frameType, .string(frameType))]
    let index = Int32(truncatingIfNeeded: tables.locationTable.count)
    tables.locationTable.append(location)
    locationIndex[resolved] = index
    return index
  }

  private mutating func mapping(for model: Mapping) -> Int32 {
    if let index = mappingIndex[model] { return index }
    var mapping = ProtoMapping()
    mapping.memoryStart = model.start
    mapping.memoryLimit = model.limit
    mapping.fileOffset = model.fileOffset
    mapping.filenameStrindex = string(
      model.profileFileName)
    if let buildID = model.buildID, !buildID.bytes.isEmpty {
      mapping.attributeIndices = [attribute(OTLPAttribute.gnuBuildID, .string(buildID.hex))]
    }
    let index = Int32(truncatingIfNeeded: tables.mappingTable.count)
    tables.mappingTable.append(mapping)
    mappingIndex[model] = index
    return index
  }

  private mutating func function(for frame: SourceFrame) -> Int32 {
    let name = string(frame.function)
    let key = FunctionKey(
      name: name, systemName: frame.systemName.map { string($0) } ?? name,
      filename: frame.file.map { string($0) } ?? 0)
    if let index = functionIndex[key] { return index }
    var function = ProtoFunction()
    function.nameStrindex = key.name
    function.systemNameStrindex = key.systemName
    function.filenameStrindex = key.filename
    let index = Int32(truncatingIfNeeded: tables.functionTable.count)
    tables.functionTable.append(function)
    functionIndex[key] = index
    return index
  }

  func finish() throws(OTLPError) -> ProtoDictionary {
    let sizes = [
      ("string", tables.stringTable.count), ("attribute", tables.attributeTable.count),
      ("mapping", tables.mappingTable.count), ("location", tables.locationTable.count),
      ("function", tables.functionTable.count), ("link", tables.linkTable.count),
      ("stack", tables.stackTable.count),
    ]
    for (name, count) in sizes where count > Int(Int32.max) {
      throw OTLPError(
        code: .encodingFailed,
        message: "the \(name) table has \(count) entries; OTLP indexes stop at \(Int32.max)")
    }
    return tables
  }

  /// One profile sample: its stack, count, thread attributes and, under a span, the link to it.
  mutating func sample(_ sample: ProfileSample) -> ProtoSample {
    var otlpSample = ProtoSample()
    otlpSample.stackIndex = stack(sample.stack)
    otlpSample.values = [sample.count]
    var attributes = [
      attribute(OTLPAttribute.processID, .int(Int64(sample.pid))),
      attribute(OTLPAttribute.threadID, .int(Int64(sample.tid))),
      attribute(OTLPAttribute.threadName, .string(sample.threadName)),
    ]
    if let span = sample.span {
      otlpSample.linkIndex = link(span)
      if let name = span.name {
        attributes.append(attribute(OTLPAttribute.spanName, .string(name)))
      }
    }
    otlpSample.attributeIndices = attributes
    return otlpSample
  }
}
