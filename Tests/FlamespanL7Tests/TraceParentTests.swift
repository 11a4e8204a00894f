import FlamespanL7
import FlamespanModel
import Testing

@Suite struct TraceParentTests {
  static let trace = "4bf92f3577b34da6a3ce929d0e0e4736"
  static let parent = "00f067aa0ba902b7"

  @Test func parsesTheSpecExample() throws {
    let value = try TraceParent.parse(" 00-\(Self.trace)-\(Self.parent)-01\t")
    #expect(value.version == 0)
    #expect(HexCoding.encode(value.traceID) == Self.trace)
    #expect(HexCoding.encode(value.parentSpanID) == Self.parent)
    #expect(value.flags == 1 && value.sampled)
  }

  @Test func laterVersionsMayCarryMoreFields() throws {
    let value = try TraceParent.parse("cc-\(Self.trace)-\(Self.parent)-00-future")
    #expect(value.version == 0xcc && !value.sampled)
  }

  @Test(arguments: [
    (
      "00-\(trace.uppercased())-\(parent)-01",
      TraceParent.Rejection.notLowercaseHex(field: "trace-id")
    ),
    ("00-\(trace)-\(parent.uppercased())-01", .notLowercaseHex(field: "parent-id")),
    ("00-00000000000000000000000000000000-\(parent)-01", .allZeroTraceID),
    ("00-\(trace)-0000000000000000-01", .allZeroParentID),
    ("ff-\(trace)-\(parent)-01", .forbiddenVersion),
    ("00-\(trace)-\(parent)", .wrongLength(52)),
    ("00-\(trace)-\(parent)-01-extra", .wrongLength(61)),
    ("00_\(trace)-\(parent)-01", .missingSeparator),
    ("0g-\(trace)-\(parent)-01", .notLowercaseHex(field: "version")),
    ("00-\(trace)-\(parent)-0x", .notLowercaseHex(field: "trace-flags")),
    ("", .wrongLength(0)),
  ])
  func rejectsMalformedValues(value: String, expected: TraceParent.Rejection) {
    #expect(throws: expected) { try TraceParent.parse(value) }
  }

  @Test func rejectsArbitraryBytesWithoutCrashing() {
    var generator = SystemRandomNumberGenerator()
    for _ in 0..<2000 {
      let bytes = (0..<Int.random(in: 0...80, using: &generator)).map { _ in
        UInt8.random(in: 0...255, using: &generator)
      }
      if let parsed = try? TraceParent.parse(bytes) {
        #expect(parsed.traceID.contains { $0 != 0 } && parsed.parentSpanID.contains { $0 != 0 })
      }
    }
  }
}

@Suite struct RequestLineTests {
  @Test func keepsMethodAndPathOnly() {
    #expect(
      RequestLine.parse(Array("GET /a/b?token=secret HTTP/1.1".utf8))
        == RequestLine(method: "GET", path: "/a/b"))
    #expect(
      RequestLine.parse(Array("POST /submit".utf8)) == RequestLine(method: "POST", path: "/submit"))
    #expect(
      RequestLine.parse(Array("GET http://example.test/x/y?q HTTP/1.1".utf8))
        == RequestLine(method: "GET", path: "/x/y"))
    #expect(RequestLine.parse(Array("GET /p#frag HTTP/1.0\r\nHost: x".utf8))?.path == "/p")
  }

  @Test func refusesWhatIsNotARequestLine() {
    #expect(RequestLine.parse(Array("BREW /pot HTTP/1.1".utf8)) == nil)
    #expect(RequestLine.parse(Array("GET".utf8)) == nil)
    #expect(RequestLine.parse(Array("GET relative HTTP/1.1".utf8)) == nil)
    #expect(RequestLine.parse(Array("GET /a SPDY/3".utf8)) == nil)
    #expect(RequestLine.parse([0x47, 0x45, 0x54, 0x20, 0x2f, 0xff, 0x00]) == nil)
    #expect(RequestLine.parse([]) == nil)
  }
}
