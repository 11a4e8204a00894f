import FlamespanBPF
import FlamespanL7
import FlamespanModel
import FlamespanProcess
import Glibc

/// What the HTTP tracer contributed to a recording.
public struct HTTPTracingSummary: Sendable {
  /// Spans in the recording, by kind.
  public var serverSpans: Int
  public var clientSpans: Int
  /// Exchange records lost in the kernel (ring buffer full) or undecodable.
  public var eventsLost: UInt64
  /// Exchanges dropped because their ids or request line were not valid.
  public var rejectedExchanges: Int
  public var counters: L7Counters

  public var spans: Int { serverSpans + clientSpans }
}

/// The L7 tracer's part of a recording: loads it (sharing its active-span map with the sampler), drains
/// its ring buffer alongside the sampler's, and assembles the spans.
final class HTTPSpanCollector {
  private let tracer: L7Tracer
  private var assembler: SpanAssembler
  private var malformed = 0
  private var processNames: [Int32: String] = [:]

  /// Loads the tracer, or returns nil with a one-line reason: a recording never fails for lack of spans.
  static func start(pids: [Int32]?, hooks: L7Hooks) -> (HTTPSpanCollector?, warning: String?) {
    do {
      let tracer = try L7Tracer(configuration: L7TracerConfiguration(pids: pids, hooks: hooks))
      return (HTTPSpanCollector(tracer: tracer), nil)
    } catch {
      let reason =
        error.context == L7Tracer.tracefsMissingMessage ? error.context : error.description
      let firstLine = reason.split(separator: "\n").first.map(String.init) ?? reason
      return (nil, "HTTP tracing is off (\(firstLine)); recording CPU samples without spans")
    }
  }

  private init(tracer: L7Tracer) {
    self.tracer = tracer
    assembler = SpanAssembler(clock: KernelClock.now())
  }

  var activeSpanMap: SharedMap { tracer.activeSpanMap }

  func addTarget(pid: Int32) throws(BPFError) { try tracer.addTarget(pid: pid) }

  /// Records read but not yet assembled into spans; assembled at the end, or whenever they pass
  /// `pendingLimitBytes` (about a million exchanges), so memory stays bounded on long recordings.
  private var pending = L7RecordBuffer()
  static let pendingLimitBytes = 160 << 20

  /// Takes what is in the ring buffer now, without waiting. Returns how many records were read.
  @discardableResult
  func drain() throws(BPFError) -> Int {
    let read = try tracer.collect(into: &pending, timeoutMilliseconds: 0)
    if pending.byteCount > Self.pendingLimitBytes { assemblePending() }
    return read
  }

  private func assemblePending() {
    pending.forEach { event in
      switch event {
      case .exchange(let exchange): add(exchange)
      case .malformed: malformed += 1
      }
    }
    pending.removeAll()
  }

  private func add(_ exchange: HTTPExchange) {
    guard assembler.insert(exchange), processNames[exchange.pid] == nil else { return }
    processNames[exchange.pid] = Self.processName(exchange.pid)
  }

  private static func processName(_ pid: Int32) -> String {
    guard let file = fopen("/proc/\(pid)/comm", "r") else { return "pid \(pid)" }
    defer { fclose(file) }
    var buffer = [CChar](repeating: 0, count: 64)
    guard fgets(&buffer, Int32(buffer.count), file) != nil else { return "pid \(pid)" }
    let name = String(
      decoding: buffer.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return name.isEmpty ? "pid \(pid)" : name
  }

  /// Drains the rest, detaches the tracer and returns the spans, names per pid and the summary.
  func finish() -> (spans: [HTTPSpan], processNames: [Int32: String], summary: HTTPTracingSummary) {
    for _ in 0..<1000 {
      guard let read = try? drain(), read > 0 else { break }
    }
    let counters = tracer.counters()
    tracer.close()
    assemblePending()
    let spans = assembler.spans
    let summary = HTTPTracingSummary(
      serverSpans: spans.filter { $0.kind == .server }.count,
      clientSpans: spans.filter { $0.kind == .client }.count,
      eventsLost: counters.eventsLost + UInt64(malformed), rejectedExchanges: assembler.rejected,
      counters: counters)
    return (spans, processNames, summary)
  }

  /// Names each labelled sample's span and settles its trace id (see `SpanAssembler.label`).
  func label(_ samples: [ProfileSample]) -> [ProfileSample] { assembler.label(samples) }
}
