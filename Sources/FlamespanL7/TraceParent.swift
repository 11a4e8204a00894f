import FlamespanModel

/// A W3C Trace Context `traceparent` value: `version-traceid-parentid-flags`, lowercase hex.
public struct TraceParent: Sendable, Equatable {
  public var version: UInt8
  /// 16 bytes, never all zero.
  public var traceID: [UInt8]
  /// 8 bytes, never all zero.
  public var parentSpanID: [UInt8]
  public var flags: UInt8

  public var sampled: Bool { flags & 1 != 0 }

  /// Why a value was rejected.
  public enum Rejection: Error, Sendable, Equatable {
    case wrongLength(Int)
    case notLowercaseHex(field: String)
    case missingSeparator
    case forbiddenVersion
    case allZeroTraceID
    case allZeroParentID
  }

  /// Parses a header value, with surrounding blanks allowed. Version 00 must be exactly 55 characters;
  /// a later version may append `-…` fields, which are ignored as the spec asks.
  public static func parse(_ value: String) throws(Rejection) -> TraceParent {
    try parse(Array(value.utf8))
  }

  public static func parse(_ raw: [UInt8]) throws(Rejection) -> TraceParent {
    var bytes = raw[...]
    while let first = bytes.first, first == 0x20 || first == 0x09 { bytes = bytes.dropFirst() }
    while let last = bytes.last, last == 0x20 || last == 0x09 { bytes = bytes.dropLast() }
    let value = Array(bytes)
    guard value.count >= 55 else { throw .wrongLength(value.count) }
    guard value[2] == UInt8(ascii: "-"), value[35] == UInt8(ascii: "-"),
      value[52] == UInt8(ascii: "-")
    else { throw .missingSeparator }
    guard let version = lowercaseHex(value[0..<2]).map({ $0[0] }) else {
      throw .notLowercaseHex(field: "version")
    }
    guard version != 0xff else { throw .forbiddenVersion }
    if version == 0 && value.count != 55 { throw .wrongLength(value.count) }
    if version != 0 && value.count > 55 && value[55] != UInt8(ascii: "-") {
      throw .missingSeparator
    }
    guard let traceID = lowercaseHex(value[3..<35]) else {
      throw .notLowercaseHex(field: "trace-id")
    }
    guard let parentID = lowercaseHex(value[36..<52]) else {
      throw .notLowercaseHex(field: "parent-id")
    }
    guard let flags = lowercaseHex(value[53..<55]).map({ $0[0] }) else {
      throw .notLowercaseHex(field: "trace-flags")
    }
    guard traceID.contains(where: { $0 != 0 }) else { throw .allZeroTraceID }
    guard parentID.contains(where: { $0 != 0 }) else { throw .allZeroParentID }
    return TraceParent(version: version, traceID: traceID, parentSpanID: parentID, flags: flags)
  }

  private static func lowercaseHex(_ digits: ArraySlice<UInt8>) -> [UInt8]? {
    guard digits.count % 2 == 0 else { return nil }
    var result: [UInt8] = []
    result.reserveCapacity(digits.count / 2)
    var index = digits.startIndex
    while index < digits.endIndex {
      guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else {
        return nil
      }
      result.append(high << 4 | low)
      index += 2
    }
    return result
  }

  private static func nibble(_ digit: UInt8) -> UInt8? {
    switch digit {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
    default: nil
    }
  }
}
