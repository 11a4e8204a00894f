import FlamespanBPF
import FlamespanModel
import FlamespanProcess
import FlamespanRuntimes
import FlamespanSymbolizer
import Foundation
import Glibc

/// How the always-on recorder samples and cuts windows.
public struct ContinuousRecordingOptions: Sendable {
  /// Samples per second per CPU; 19 keeps an always-on agent cheap and avoids beating with 10 ms timers.
  public var frequency: Int = 19
  /// Length of one window; each window becomes one profile.
  public var windowNanos: UInt64 = 10_000_000_000
  /// Also load the L7 tracer, so samples carry the HTTP span their thread was serving.
  public var traceHTTP = true
  /// The default 64 parsed files: with 16, a machine running builds (a new compiler process every few
  /// seconds, each with a dozen big files) evicted and re-parsed files every window, which cost more CPU
  /// than the memory it saved (bench/agent/RESULTS.md).
  public var symbolizer = SymbolizerOptions()
  /// Resident bytes above which the symbolizer's caches are dropped after a window (nil: never). The cache
  /// is bounded by file count, and one parsed compiler binary can hold 100 MiB, so this is what keeps an
  /// agent on a build machine inside its memory limit.
  public var memoryBudgetBytes: UInt64? = nil
  /// Windows cut but not yet symbolized. Past this the oldest is dropped (and counted) so that sampling
  /// never waits for symbolization.
  public var pendingWindowLimit = 4
  /// HTTP exchanges kept per window; past it a uniform sample of this size is kept (reservoir sampling), so
  /// a load test on the machine (half a million requests in 10 s) costs bounded memory.
  public var exchangeLimitPerWindow = 20_000
  /// How user stacks are walked; auto copies the top of each user stack (`userStackCopyBytes`) and
  /// unwinds it with the runtime plug-ins, DWARF CFI and frame pointers.
  public var unwinding: UserStackUnwinding = .automatic
  public var userStackCopyBytes = 16384

  public init() {}
}

/// One window, symbolized: its profile plus the HTTP exchanges that ended inside it.
public struct RecordedWindow: Sendable {
  /// 0, 1, 2… in the order windows were cut.
  public var sequence: Int
  public var profile: Profile
  public var exchanges: [HTTPExchange]
  /// Turns the exchanges' CLOCK_MONOTONIC times into Unix nanoseconds; read when the window was cut.
  public var clock: KernelClock
  /// The window cut at shutdown.
  public var isLast: Bool
}

/// Counters of the recorder since it started, for status lines and /metrics.
public struct ContinuousRecorderStatistics: Sendable {
  public var windowsCut = 0
  public var windowsResolved = 0
  /// Windows dropped because symbolization fell `pendingWindowLimit` windows behind.
  public var windowsDroppedBeforeSymbolization = 0
  public var samplesReceived = 0
  public var malformedRecords = 0
  public var sampler = SamplerCounters()
  public var l7 = L7Counters()
  /// Why HTTP tracing is off when it was asked for (for example tracefs missing); nil when it runs.
  public var l7Unavailable: String?
  /// Exchanges left out of windows by `exchangeLimitPerWindow`.
  public var exchangesDropped = 0
  public var symbolizer = SymbolizerStatistics()
  /// Times the symbolizer's caches were dropped to get back under `memoryBudgetBytes`.
  public var symbolizerResets = 0
  public var trackedProcesses = 0
  /// Wall time the last window took to symbolize.
  public var lastResolveNanos: UInt64 = 0
  public var sampledCPUs = 0
  /// Stack-copy modes: stacks unwound, complete, and why the others stopped early, by reason and process.
  public var unwinding: UnwindingSummary?
}

/// The always-on recording loop: samples the whole machine on the calling thread and cuts a window every
/// `windowNanos`; a second thread symbolizes each window and hands it on. The two meet in a bounded queue,
/// so a slow symbolization (a cold cache, a huge binary) costs dropped windows, never stalled sampling.
public final class ContinuousRecorder: @unchecked Sendable {
  public let options: ContinuousRecordingOptions
  private let lock = NSLock()
  private var stats = ContinuousRecorderStatistics()

  public init(options: ContinuousRecordingOptions) {
    self.options = options
  }

  public var statistics: ContinuousRecorderStatistics { lock.withLock { stats } }

  /// At 19 Hz a 100 ms drain sees a few records per CPU; 2 MiB still holds about 100 ms of 256 busy CPUs,
  /// where the one-shot recorder's 8 MiB would be locked kernel memory for nothing. Not smaller, although
  /// the kernel maps a ring's pages twice into the reader (each MiB here is two of the agent's RSS): the
  /// same thread drains the L7 tracer, and under an HTTP load test a 256 KiB ring lost 6 % of the samples
  /// while it did (bench/agent/RESULTS.md).
  static let ringBufferBytes = 2 << 20
  /// With stack copies a record is up to `copyBytes` larger: room for 400 ms of every CPU at 19 Hz
  /// (the reader drains every 100 ms), a power of two as the kernel requires.
  static func ringBufferBytes(copyBytes: Int?) -> Int {
    guard let copyBytes else { return ringBufferBytes }
    let wanted = L7Tracer.possibleCPUs * 8 * (copyBytes + 1024)
    var size = ringBufferBytes
    while size < wanted && size < 1 << 30 { size <<= 1 }
    return size
  }
  /// The L7 tracer's rings for the agent, one per CPU: 2 MiB in all hold ~14k exchange records, over
  /// 100 ms of the heaviest HTTP load measured here (56k spans/s) between two drains, where the
  /// recorder's 16 MiB were 32 MiB of RSS (bench/agent/RESULTS.md). Not below 128 KiB a CPU (~900 records
  /// per 100 ms): on a machine of many CPUs a server's load can sit on a few of them. An overflow is
  /// counted in the lost-event metric, never silent.
  static var l7RingBufferBytes: Int { max(2 << 20, L7Tracer.possibleCPUs * (128 << 10)) }

  /// Runs until `shouldStop` returns true, then cuts the last window, detaches every BPF program, waits for
  /// the pending windows to be symbolized and returns. `onWindow` runs on the symbolizing thread.
  public func run(
    shouldStop: () -> Bool, onWindow: @escaping @Sendable (RecordedWindow) -> Void
  ) throws(RecordError) {
    var tracer: L7Tracer?
    if options.traceHTTP {
      do {
        tracer = try L7Tracer(
          configuration: L7TracerConfiguration(ringBufferBytes: Self.l7RingBufferBytes))
      } catch {
        lock.withLock { stats.l7Unavailable = error.description }
      }
    }
    let sampler: CPUSampler
    do {
      sampler = try CPUSampler(
        configuration: SamplerConfiguration(
          frequency: options.frequency, pids: nil, aggregateInKernel: false,
          activeSpanMap: tracer?.activeSpanMap,
          userStackCopyBytes: options.unwinding.copiesStacks ? options.userStackCopyBytes : nil,
          ringBufferBytes: Self.ringBufferBytes(
            copyBytes: options.unwinding.copiesStacks ? options.userStackCopyBytes : nil)))
    } catch {
      tracer?.close()
      throw RecordError(error)
    }
    lock.withLock { stats.sampledCPUs = sampler.sampledCPUs.count }

    let tracker = ProcessTracker()
    // The sampling thread unwinds and the symbolizing thread names frames: a registry each, since
    // registries are not thread-safe, and parsed runtime tables are small next to the symbolizer's.
    let automatic = options.unwinding == .automatic
    var unwinding = StackUnwinding(
      runtimes: automatic ? RuntimeRegistry(runtimes: RuntimeCatalog.standard()) : nil,
      publisher: InterpreterStacks.publisher(to: sampler))
    let resolver = WindowResolver(
      tracker: tracker, symbolizer: Symbolizer(options: options.symbolizer),
      runtimes: automatic ? RuntimeRegistry(runtimes: RuntimeCatalog.standard()) : nil,
      symbolizerOptions: options.symbolizer, memoryBudget: options.memoryBudgetBytes,
      limit: max(options.pendingWindowLimit, 1),
      periodNanos: Int64(1_000_000_000 / max(options.frequency, 1)),
      recorder: self, onWindow: onWindow)
    resolver.start()

    var aggregator = SampleAggregator()
    var exchanges: [HTTPExchange] = []
    var exchangesSeen = 0
    var exchangesDropped = 0
    let exchangeLimit = max(options.exchangeLimitPerWindow, 1)
    var rescans = MapsRescanPolicy()
    var malformed = 0
    var exited: [Int32: UInt64] = [:]
    let handleSample = { (event: SamplerEvent) in
      switch event {
      case .sample(let sample):
        unwinding.add(sample, to: &aggregator, tracker: tracker, rescans: &rescans)
      case .process(.exec, let pid, let time, _):
        aggregator.noteExec(pid: pid)
        unwinding.noteExec(pid: pid)
        if tracker.snapshot(pid: pid, at: time) { aggregator.noteSnapshot(pid: pid, time: time) }
      case .process(.exit, let pid, let time, _):
        exited[pid] = time
        unwinding.forget(pid: pid)
      case .malformed:
        malformed += 1
      }
    }
    let handleExchange = { (event: L7Event) in
      guard case .exchange(let exchange) = event else { return }
      exchangesSeen += 1
      if exchanges.count < exchangeLimit {
        exchanges.append(exchange)
        return
      }
      exchangesDropped += 1
      let slot = Int.random(in: 0..<exchangesSeen)
      if slot < exchangeLimit { exchanges[slot] = exchange }
    }

    var windowStart = ProcessInspector.monotonicNanos()
    var windowWallStart = KernelClock.unixNanos()
    var sequence = 0
    func cutWindow(now: UInt64, isLast: Bool) {
      let window = PendingWindow(
        sequence: sequence, aggregator: aggregator, exchanges: exchanges,
        startMonotonic: windowStart, endMonotonic: now, wallStart: windowWallStart,
        clock: KernelClock.now(),
        exitedProcesses: exited, isLast: isLast)
      sequence += 1
      let counters = sampler.counters()
      let l7Counters = tracer?.counters()
      lock.withLock {
        stats.windowsCut += 1
        stats.samplesReceived += aggregator.sampleCount
        stats.malformedRecords = malformed
        stats.sampler = counters
        if let l7Counters { stats.l7 = l7Counters }
        stats.exchangesDropped = exchangesDropped
        if options.unwinding.copiesStacks {
          stats.unwinding = unwinding.summary(
            mode: options.unwinding, copyFailures: counters.stackCopyFailed)
        }
      }
      aggregator = SampleAggregator()
      exchanges = []
      exchangesSeen = 0
      exited = [:]
      windowStart = now
      windowWallStart = KernelClock.unixNanos()
      resolver.submit(window)
    }

    var failure: RecordError?
    while true {
      do {
        try sampler.poll(timeoutMilliseconds: 100, handler: handleSample)
        try tracer?.poll(timeoutMilliseconds: 0, handler: handleExchange)
      } catch {
        failure = RecordError(error)
        break
      }
      if shouldStop() { break }
      let now = ProcessInspector.monotonicNanos()
      if now - windowStart >= options.windowNanos { cutWindow(now: now, isLast: false) }
    }
    // What is already in the ring buffers belongs to the last window.
    _ = try? sampler.poll(timeoutMilliseconds: 0, handler: handleSample)
    _ = try? tracer?.poll(timeoutMilliseconds: 0, handler: handleExchange)
    cutWindow(now: ProcessInspector.monotonicNanos(), isLast: true)
    sampler.close()
    tracer?.close()
    resolver.finish()
    if let failure { throw failure }
  }

  fileprivate func noteResolved(
    symbolizer: SymbolizerStatistics, tracked: Int, nanos: UInt64, dropped: Int, resets: Int
  ) {
    lock.withLock {
      stats.windowsResolved += 1
      stats.symbolizer = symbolizer
      stats.symbolizerResets = resets
      stats.trackedProcesses = tracked
      stats.lastResolveNanos = nanos
      stats.windowsDroppedBeforeSymbolization = dropped
    }
  }
}

private struct PendingWindow: @unchecked Sendable {
  var sequence: Int
  var aggregator: SampleAggregator
  var exchanges: [HTTPExchange]
  var startMonotonic: UInt64
  var endMonotonic: UInt64
  var wallStart: Int64
  var clock: KernelClock
  var exitedProcesses: [Int32: UInt64]
  var isLast: Bool
}

/// The symbolizing thread and its bounded inbox.
private final class WindowResolver: @unchecked Sendable {
  private let tracker: ProcessTracker
  private var symbolizer: Symbolizer
  private let runtimes: RuntimeRegistry?
  private let symbolizerOptions: SymbolizerOptions
  private let memoryBudget: UInt64?
  private var resets = 0
  /// Statistics of symbolizers already dropped, so the totals keep counting across resets.
  private var retiredStatistics = SymbolizerStatistics()
  private let limit: Int
  private let periodNanos: Int64
  private weak var recorder: ContinuousRecorder?
  private let onWindow: @Sendable (RecordedWindow) -> Void
  private let condition = NSCondition()
  private var inbox: [PendingWindow] = []
  private var finished = false
  private var done = false
  private var dropped = 0
  /// Span names by span id, from exchanges seen so far: a sample is usually taken before its exchange
  /// ends, so names of spans that end in a later window stay unknown for the samples of earlier ones.
  /// Keyed by the 8-byte span id as an integer: an entry then needs no allocation of its own, which at
  /// 50 000 entries (a few windows of a load test) is megabytes of the agent's RSS.
  private var spanNames: [UInt64: String] = [:]
  private var spanNameOrder: [UInt64] = []
  private static let spanNameLimit = 50_000

  init(
    tracker: ProcessTracker, symbolizer: Symbolizer, runtimes: RuntimeRegistry?,
    symbolizerOptions: SymbolizerOptions, memoryBudget: UInt64?, limit: Int, periodNanos: Int64,
    recorder: ContinuousRecorder, onWindow: @escaping @Sendable (RecordedWindow) -> Void
  ) {
    self.tracker = tracker
    self.symbolizer = symbolizer
    self.runtimes = runtimes
    self.symbolizerOptions = symbolizerOptions
    self.memoryBudget = memoryBudget
    self.limit = limit
    self.periodNanos = periodNanos
    self.recorder = recorder
    self.onWindow = onWindow
  }

  func start() {
    let thread = Thread { [self] in loop() }
    thread.name = "flamespan-symbolize"
    thread.start()
  }

  func submit(_ window: PendingWindow) {
    condition.lock()
    if window.isLast {
      // Shutdown has a deadline: windows still waiting behind a slow symbolization are given up (and
      // counted) so that the last window, the one the signal cut, goes out in time.
      dropped += inbox.count
      inbox.removeAll()
    }
    inbox.append(window)
    while inbox.count > limit {
      inbox.removeFirst()
      dropped += 1
    }
    condition.signal()
    condition.unlock()
  }

  /// Waits until every submitted window has been handed on.
  func finish() {
    condition.lock()
    finished = true
    condition.broadcast()
    while !done { condition.wait() }
    condition.unlock()
  }

  private func loop() {
    while true {
      condition.lock()
      while inbox.isEmpty && !finished { condition.wait() }
      if inbox.isEmpty {
        done = true
        condition.broadcast()
        condition.unlock()
        return
      }
      let window = inbox.removeFirst()
      let droppedSoFar = dropped
      condition.unlock()
      resolve(window, dropped: droppedSoFar)
    }
  }

  private func resolve(_ window: PendingWindow, dropped: Int) {
    let began = ProcessInspector.monotonicNanos()
    for exchange in window.exchanges {
      let key = SpanID.key(exchange.spanID)
      guard spanNames[key] == nil, let line = RequestLine.parse(exchange.requestLine) else {
        continue
      }
      spanNames[key] = line.spanName
      spanNameOrder.append(key)
    }
    if spanNameOrder.count > Self.spanNameLimit {
      for id in spanNameOrder.prefix(spanNameOrder.count / 2) { spanNames[id] = nil }
      spanNameOrder.removeFirst(spanNameOrder.count / 2)
    }
    var samples = StackResolver(tracker: tracker, symbolizer: symbolizer, runtimes: runtimes)
      .resolve(window.aggregator)
    // Between windows the symbolizer keeps only what fits its byte budget (when it has one): a big binary
    // parsed for this window is dropped here rather than held until something newer pushes it out.
    symbolizer.trimToMemoryBudget()
    for index in samples.indices {
      if let id = samples[index].span?.spanID, let name = spanNames[SpanID.key(id)] {
        samples[index].span?.name = name
      }
    }
    let profile = Profile(
      samples: samples, periodNanos: periodNanos, startTimeNanos: window.wallStart,
      durationNanos: Int64(window.endMonotonic - window.startMonotonic))
    // Later windows need only the snapshots in force from this window's end on, and nothing of processes
    // that exited inside it.
    tracker.discardSnapshots(before: window.endMonotonic)
    for pid in window.exitedProcesses.keys where !ProcessInspector.exists(pid: pid) {
      tracker.forget(pid: pid)
      runtimes?.forget(pid: pid)
    }
    // Symbolizing a big binary parses its tables into short-lived allocations; hand the freed pages back
    // so the agent's resident size follows its caches, not its peak.
    Self.releaseFreedMemory()
    var statistics = retiredStatistics.adding(symbolizer.statistics)
    if let memoryBudget, Self.residentBytes() > memoryBudget {
      retiredStatistics = statistics
      symbolizer = Symbolizer(options: symbolizerOptions)
      resets += 1
      Self.releaseFreedMemory()
      statistics = retiredStatistics
    }
    onWindow(
      RecordedWindow(
        sequence: window.sequence, profile: profile, exchanges: window.exchanges,
        clock: window.clock, isLast: window.isLast))
    // What the window's consumer built (export bodies, compressed copies, store rows) is freed by now;
    // without this the pages stay resident until the next window, ten seconds of an RSS that shows the
    // consumer's peak rather than what the agent holds.
    Self.releaseFreedMemory()
    recorder?.noteResolved(
      symbolizer: statistics, tracked: tracker.trackedProcesses,
      nanos: ProcessInspector.monotonicNanos() - began, dropped: dropped, resets: resets)
  }

  /// glibc's malloc_trim, which Swift's Glibc module does not import; looked up once.
  private static let mallocTrim: (@convention(c) (Int) -> Int32)? = {
    guard let symbol = dlsym(nil, "malloc_trim") else { return nil }
    return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
  }()

  static func releaseFreedMemory() { _ = mallocTrim?(0) }

  /// This process's resident set from /proc/self/statm (0 when unreadable).
  static func residentBytes() -> UInt64 {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else {
      return 0
    }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = UInt64(fields[1]) else { return 0 }
    return pages * UInt64(sysconf(Int32(_SC_PAGESIZE)))
  }
}

extension SymbolizerStatistics {
  fileprivate func adding(_ other: SymbolizerStatistics) -> SymbolizerStatistics {
    var sum = self
    sum.cacheHits += other.cacheHits
    sum.cacheMisses += other.cacheMisses
    sum.filesParsed += other.filesParsed
    sum.evictions += other.evictions
    sum.addressesResolved += other.addressesResolved
    sum.addressesUnknown += other.addressesUnknown
    // A gauge: only the live symbolizer's cache holds memory.
    sum.cachedBytes = other.cachedBytes
    return sum
  }
}
