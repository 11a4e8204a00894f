import FlamespanModel

/// Which samples `drill` keeps: those taken inside a given trace, span or span name. Every criterion
/// given must match; a filter with none keeps everything.
public struct ProfileFilter: Sendable, Equatable {
  /// 16 bytes.
  public private(set) var traceID: [UInt8]?
  /// 8 bytes.
  public private(set) var spanID: [UInt8]?
  public var spanName: String?

  /// A trace or span id given by a person or a script is not what the filter needs.
  public struct InvalidID: Error, CustomStringConvertible, Sendable, Equatable {
    /// "trace id" or "span id".
    public var field: String
    public var value: String
    public var reason: String
    public var description: String { "invalid \(field) \"\(value)\": \(reason)" }
  }

  /// Ids are W3C hex: 32 characters for a trace, 16 for a span, either case.
  public init(traceID: String? = nil, spanID: String? = nil, spanName: String? = nil)
    throws(InvalidID)
  {
    self.traceID = try traceID.map { text throws(InvalidID) in
      try Self.parseID(text, field: "trace id", byteCount: 16)
    }
    self.spanID = try spanID.map { text throws(InvalidID) in
      try Self.parseID(text, field: "span id", byteCount: 8)
    }
    self.spanName = spanName
  }

  public var isEmpty: Bool { traceID == nil && spanID == nil && spanName == nil }

  public func matches(_ sample: ProfileSample) -> Bool {
    if isEmpty { return true }
    guard let span = sample.span else { return false }
    if let traceID, span.traceID != traceID { return false }
    if let spanID, span.spanID != spanID { return false }
    if let spanName, span.name != spanName { return false }
    return true
  }

  /// The same profile with only the matching samples; timing, period and comments are kept.
  public func apply(to profile: Profile) -> Profile {
    var filtered = profile
    filtered.samples = profile.samples.filter(matches)
    return filtered
  }

  private static func parseID(_ text: String, field: String, byteCount: Int) throws(InvalidID)
    -> [UInt8]
  {
    guard text.utf8.count == byteCount * 2 else {
      throw InvalidID(
        field: field, value: text,
        reason: "need \(byteCount * 2) hex characters, got \(text.utf8.count)")
    }
    guard let bytes = HexCoding.decode(text) else {
      throw InvalidID(field: field, value: text, reason: "not hexadecimal")
    }
    // W3C trace context reserves all zeros as "no id"; no sample can carry it.
    guard bytes.contains(where: { $0 != 0 }) else {
      throw InvalidID(field: field, value: text, reason: "all zeros is not a valid id")
    }
    return bytes
  }
}
