import FlamespanL7
import Testing

@Suite struct HTTPStreamParserTests {
  static let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

  /// Feeds `bytes` split at every given size pattern and returns all events.
  static func events(
    _ text: String, direction: HTTPStreamParser.Direction, chunkSizes: [Int]
  ) -> ([HTTPStreamParser.Event], HTTPStreamParser) {
    var parser = HTTPStreamParser(direction: direction)
    var events: [HTTPStreamParser.Event] = []
    var bytes = Array(text.utf8)[...]
    var turn = 0
    while !bytes.isEmpty {
      let size = chunkSizes[turn % chunkSizes.count]
      events += parser.feed(Array(bytes.prefix(size)))
      bytes = bytes.dropFirst(size)
      turn += 1
    }
    return (events, parser)
  }

  @Test(arguments: [[4096], [1], [7, 3], [13]])
  func keepAliveRequestsWithHeadersSplitAnywhere(chunkSizes: [Int]) throws {
    let stream =
      "GET /a?x=1 HTTP/1.1\r\nHost: h\r\nTRACEPARENT: \(Self.traceparent)\r\nCookie: s=1\r\n\r\n"
      + "POST /b HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
      + "GET /c HTTP/1.1\r\ntraceparent: 00-zz\r\n\r\n"
    let (events, parser) = Self.events(stream, direction: .requests, chunkSizes: chunkSizes)
    #expect(parser.failure == nil)
    let requests = events.compactMap { event -> (RequestLine, TraceParent?, Bool)? in
      if case .request(let line, let parent, let rejected) = event {
        return (line, parent, rejected)
      }
      return nil
    }
    #expect(requests.map(\.0.path) == ["/a", "/b", "/c"])
    #expect(requests[0].1?.sampled == true && !requests[0].2)
    #expect(requests[1].1 == nil && !requests[1].2)
    #expect(requests[2].1 == nil && requests[2].2)
    let ends = events.compactMap { event -> Int? in
      if case .messageEnd(_, let body) = event { return body }
      return nil
    }
    #expect(ends == [0, 5, 0])
  }

  @Test(arguments: [[4096], [1], [5, 2]])
  func chunkedAndLargeResponses(chunkSizes: [Int]) {
    let big = String(repeating: "x", count: 300_000)
    let stream =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nchunk\n\r\nA;ext=1\r\n0123456789\r\n0\r\nTrailer: t\r\n\r\n"
      + "HTTP/1.1 500 Internal Server Error\r\nContent-Length: \(big.count)\r\n\r\n\(big)"
      + "HTTP/1.1 204 No Content\r\n\r\n"
    let (events, parser) = Self.events(
      stream, direction: .responses, chunkSizes: chunkSizes == [1] ? [1, 4096] : chunkSizes)
    #expect(parser.failure == nil)
    #expect(
      events.compactMap { if case .response(let status) = $0 { status } else { nil } } == [
        200, 500, 204,
      ])
    #expect(
      events.compactMap { if case .messageEnd(_, let body) = $0 { body } else { nil } }
        == [16, big.count, 0])
  }

  @Test func closeDelimitedResponseEndsAtClose() {
    var parser = HTTPStreamParser(direction: .responses)
    _ = parser.feed(Array("HTTP/1.0 200 OK\r\n\r\nsome body".utf8))
    #expect(parser.close() == [.messageEnd(headBytes: 19, bodyBytes: 9)])
  }

  @Test func closeMidHeaderGivesNoRequest() {
    var parser = HTTPStreamParser(direction: .requests)
    let events = parser.feed(Array("GET /half HTTP/1.1\r\nHost: exa".utf8))
    #expect(events.isEmpty)
    #expect(parser.close().isEmpty)
  }

  @Test func garbageAndOversizedHeadsFailCleanly() {
    var garbage = HTTPStreamParser(direction: .requests)
    #expect(garbage.feed([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03]).isEmpty)
    #expect(garbage.failure == .notHTTP)
    #expect(garbage.feed(Array("GET / HTTP/1.1\r\n\r\n".utf8)).isEmpty)

    var oversized = HTTPStreamParser(direction: .requests, headLimit: 1024)
    let head = "GET / HTTP/1.1\r\nX-Big: " + String(repeating: "a", count: 2000) + "\r\n\r\n"
    #expect(oversized.feed(Array(head.utf8)).isEmpty)
    #expect(oversized.failure == .headTooLarge(limit: 1024))

    var badChunk = HTTPStreamParser(direction: .responses)
    _ = badChunk.feed(Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".utf8))
    #expect(badChunk.failure == .badFraming("bad chunk size"))
  }

  @Test func randomBytesNeverCrash() {
    var generator = SystemRandomNumberGenerator()
    for round in 0..<300 {
      var parser = HTTPStreamParser(
        direction: round % 2 == 0 ? .requests : .responses, headLimit: 512)
      let prefix = round % 3 == 0 ? Array("GET / HTTP/1.1\r\nContent-Length: 3\r\n".utf8) : []
      let noise = (0..<Int.random(in: 0...2000, using: &generator)).map { _ in
        UInt8.random(in: 0...255, using: &generator)
      }
      _ = parser.feed(prefix + noise)
      _ = parser.close()
    }
  }
}
