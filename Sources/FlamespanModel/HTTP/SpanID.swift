/// Trace and span ids as W3C trace context defines them: 16 and 8 bytes, never all zero.
public enum SpanID {
  public static let traceIDLength = 16
  public static let spanIDLength = 8

  public static func isValidTraceID(_ id: [UInt8]) -> Bool { isValid(id, length: traceIDLength) }
  public static func isValidSpanID(_ id: [UInt8]) -> Bool { isValid(id, length: spanIDLength) }

  /// The 8 bytes of a span id as one integer, big-endian. Dictionaries keyed by it need no allocation per
  /// entry, where hashing byte arrays was the recorder's top cost at 50k spans/s. Callers pass validated
  /// ids; a shorter one is taken as it is.
  public static func key(_ spanID: [UInt8]) -> UInt64 {
    spanID.prefix(spanIDLength).reduce(0) { $0 << 8 | UInt64($1) }
  }

  private static func isValid(_ id: [UInt8], length: Int) -> Bool {
    id.count == length && id.contains { $0 != 0 }
  }
}
