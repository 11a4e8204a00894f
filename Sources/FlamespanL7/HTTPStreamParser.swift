/// An incremental HTTP/1.x parser for one direction of one connection. Feed it the bytes in the order they
/// were read, in any chunking; it reports each message's head and end. It keeps only what spans need —
/// request line, status, framing headers and `traceparent` — and never stores bodies or other headers.
public struct HTTPStreamParser: Sendable {
  public enum Direction: Sendable { case requests, responses }

  public enum Event: Sendable, Equatable {
    case request(RequestLine, traceParent: TraceParent?, rejectedTraceParent: Bool)
    case response(status: Int)
    /// The message ended; `bodyBytes` excludes the head and chunk framing.
    case messageEnd(headBytes: Int, bodyBytes: Int)
  }

  public enum Failure: Error, Sendable, Equatable {
    case headTooLarge(limit: Int)
    case notHTTP
    case badFraming(String)
  }

  public let direction: Direction
  public let headLimit: Int
  /// Set once the stream is unusable; every later `feed` is ignored.
  public private(set) var failure: Failure?

  private enum State: Sendable {
    case head
    case fixedBody(remaining: Int)
    case chunkSize
    case chunkData(remaining: Int)
    case chunkDataEnd
    case trailers
    case untilClose
  }

  private var state = State.head
  private var pending: [UInt8] = []
  private var headBytes = 0
  private var bodyBytes = 0
  private var lastRequestWasHead = false

  public init(direction: Direction, headLimit: Int = 16384) {
    self.direction = direction
    self.headLimit = headLimit
  }

  /// Tells the parser the request this response answers was HEAD (no body whatever the headers say).
  public mutating func expectResponseToHEAD() { lastRequestWasHead = true }

  public mutating func feed(_ bytes: [UInt8]) -> [Event] {
    guard failure == nil else { return [] }
    var events: [Event] = []
    var input = bytes[...]
    while !input.isEmpty, failure == nil {
      switch state {
      case .head:
        let before = pending.count
        pending.append(contentsOf: input)
        guard let end = Self.headEnd(pending, searchFrom: max(0, before - 3)) else {
          if pending.count > headLimit { failure = .headTooLarge(limit: headLimit) }
          if pending.count >= 8, !looksLikeStart(pending) { failure = .notHTTP }
          return events
        }
        guard end <= headLimit else {
          failure = .headTooLarge(limit: headLimit)
          return events
        }
        let head = Array(pending[..<end])
        input = pending[end...]
        pending = []
        headBytes = end
        bodyBytes = 0
        parseHead(head, into: &events)
        if case .head = state, failure == nil {
          events.append(.messageEnd(headBytes: headBytes, bodyBytes: 0))
        }
        input = Array(input)[...]
      case .fixedBody(let remaining):
        let take = min(remaining, input.count)
        input = input.dropFirst(take)
        bodyBytes += take
        if take == remaining {
          state = .head
          events.append(.messageEnd(headBytes: headBytes, bodyBytes: bodyBytes))
        } else {
          state = .fixedBody(remaining: remaining - take)
        }
      case .untilClose:
        bodyBytes += input.count
        input = input.dropFirst(input.count)
      case .chunkSize, .trailers, .chunkDataEnd:
        guard let newline = input.firstIndex(of: 0x0a) else {
          pending.append(contentsOf: input)
          if pending.count > 1024 { failure = .badFraming("chunk line longer than 1 KiB") }
          return events
        }
        pending.append(contentsOf: input[...newline])
        input = input[(newline + 1)...]
        let line = pending
        pending = []
        lineDone(line, into: &events)
      case .chunkData(let remaining):
        let take = min(remaining, input.count)
        input = input.dropFirst(take)
        bodyBytes += take
        state = take == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - take)
      }
    }
    return events
  }

  /// The connection closed: a close-delimited response ends here; anything else in flight is cut short.
  public mutating func close() -> [Event] {
    guard failure == nil, case .untilClose = state else { return [] }
    state = .head
    return [.messageEnd(headBytes: headBytes, bodyBytes: bodyBytes)]
  }

  private mutating func lineDone(_ line: [UInt8], into events: inout [Event]) {
    let text = line.prefix { $0 != 0x0d && $0 != 0x0a }
    switch state {
    case .chunkDataEnd:
      guard text.isEmpty else {
        failure = .badFraming("chunk data not followed by CRLF")
        return
      }
      state = .chunkSize
    case .chunkSize:
      let digits = text.prefix { $0 != UInt8(ascii: ";") && $0 != 0x20 }
      guard !digits.isEmpty, digits.count <= 15,
        let size = Int(String(decoding: digits, as: UTF8.self), radix: 16)
      else {
        failure = .badFraming("bad chunk size")
        return
      }
      state = size == 0 ? .trailers : .chunkData(remaining: size)
    case .trailers:
      if text.isEmpty {
        state = .head
        events.append(.messageEnd(headBytes: headBytes, bodyBytes: bodyBytes))
      }
    default:
      break
    }
  }

  private func looksLikeStart(_ bytes: [UInt8]) -> Bool {
    let prefix = String(decoding: bytes.prefix(8), as: UTF8.self)
    switch direction {
    case .responses: return prefix.hasPrefix("HTTP/1.")
    case .requests:
      return RequestLine.methods.contains { prefix.hasPrefix($0 + " ") }
    }
  }

  private mutating func parseHead(_ head: [UInt8], into events: inout [Event]) {
    var lines = head.split(separator: 0x0a, omittingEmptySubsequences: false).map {
      $0.last == 0x0d ? $0.dropLast() : $0
    }
    while lines.last?.isEmpty == true { lines.removeLast() }
    guard let first = lines.first else {
      failure = .notHTTP
      return
    }
    var contentLength: Int?
    var chunked = false
    var traceParent: TraceParent?
    var rejected = false
    for line in lines.dropFirst() {
      guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
      let name = String(decoding: line[..<colon], as: UTF8.self).lowercased()
      let value = line[(colon + 1)...]
      switch name {
      case "content-length":
        let text = String(decoding: value, as: UTF8.self).trimmingBlanks
        guard let length = Int(text), length >= 0 else {
          failure = .badFraming("bad Content-Length")
          return
        }
        contentLength = length
      case "transfer-encoding":
        chunked = String(decoding: value, as: UTF8.self).lowercased().contains("chunked")
      case "traceparent" where direction == .requests && traceParent == nil && !rejected:
        do { traceParent = try TraceParent.parse(Array(value)) } catch { rejected = true }
      default:
        continue  // other headers are never looked at, let alone kept
      }
    }
    var status = 0
    switch direction {
    case .requests:
      guard let request = RequestLine.parse(Array(first)) else {
        failure = .notHTTP
        return
      }
      events.append(.request(request, traceParent: traceParent, rejectedTraceParent: rejected))
    case .responses:
      let text = String(decoding: first, as: UTF8.self)
      let fields = text.split(separator: " ", maxSplits: 2)
      guard fields.count >= 2, fields[0].hasPrefix("HTTP/1."), fields[1].count == 3,
        let code = Int(fields[1]), (100...599).contains(code)
      else {
        failure = .notHTTP
        return
      }
      status = code
      events.append(.response(status: code))
    }
    let bodiless =
      direction == .responses
      && (lastRequestWasHead || (100..<200).contains(status) || status == 204 || status == 304)
    if direction == .responses { lastRequestWasHead = false }
    if bodiless {
      state = .head
    } else if chunked {
      state = .chunkSize
    } else if let contentLength, contentLength > 0 {
      state = .fixedBody(remaining: contentLength)
    } else if contentLength == nil && direction == .responses {
      state = .untilClose
    } else {
      state = .head
    }
  }

  /// Offset just past the blank line that ends a head (CRLFCRLF, or bare LFLF), or nil.
  static func headEnd(_ bytes: [UInt8], searchFrom start: Int) -> Int? {
    var index = start
    while index < bytes.count {
      if bytes[index] == 0x0a {
        if index + 1 < bytes.count, bytes[index + 1] == 0x0a { return index + 2 }
        if index + 2 < bytes.count, bytes[index + 1] == 0x0d, bytes[index + 2] == 0x0a {
          return index + 3
        }
      }
      index += 1
    }
    return nil
  }
}

extension String {
  var trimmingBlanks: String {
    var text = Substring(self)
    while text.first == " " || text.first == "\t" { text = text.dropFirst() }
    while text.last == " " || text.last == "\t" { text = text.dropLast() }
    return String(text)
  }
}
