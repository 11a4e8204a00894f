import FlamespanExport
import FlamespanModel
import FlamespanOTLP
import FlamespanRecorder
import Foundation
import Glibc

/// The agent's window handling: for every symbolized window it builds spans and per-process resources,
/// writes the window to the local store and queues its exports. Runs on the symbolizing thread, so
/// nothing here can slow down sampling.
final class Agent: @unchecked Sendable {
  let configuration: AgentConfiguration
  let recorder: ContinuousRecorder
  let queue: ExportQueue
  let store: SQLiteStore?
  let metadata: ProcessMetadataCache
  let hostName: String
  private let lock = NSLock()
  private var windowsHandled = 0
  private var spansSeen = 0
  private var spansDropped = 0
  private var storeErrors = 0
  private var lastStatus = (cpuNanos: UInt64(0), wall: UInt64(0))
  let startedAt = KernelClock.monotonicNanos()

  init(configuration: AgentConfiguration, store: SQLiteStore?) {
    self.configuration = configuration
    var options = ContinuousRecordingOptions()
    options.frequency = configuration.frequency
    options.windowNanos = configuration.exportIntervalNanos
    options.traceHTTP = configuration.traceHTTP
    options.unwinding = configuration.unwinding
    options.memoryBudgetBytes = configuration.memoryBudgetBytes
    options.symbolizer.maxCachedBytes = configuration.symbolizerCacheBytes
    recorder = ContinuousRecorder(options: options)
    var journal: ExportJournal?
    if let store {
      do {
        journal = try ExportJournal(
          directory: store.directory.appendingPathComponent("queue").path,
          makeRoom: { store.makeRoom() })
      } catch {
        Log.info(
          "the export queue is in memory only: cannot use \(store.directory.path)/queue: \(error)")
      }
    }
    queue = ExportQueue(
      limits: configuration.queueLimits, journal: journal,
      client: ExportHTTPClient(tlsByDestination: configuration.tlsByDestination),
      log: { Log.info($0) })
    self.store = store
    metadata = ProcessMetadataCache(fallbackServiceName: configuration.serviceName)
    hostName = configuration.hostName ?? HostName.current() ?? "unknown"
    lastStatus = (OwnUsage.cpuNanos(), KernelClock.monotonicNanos())
    if let store, store.temporaryFilesRemoved > 0 {
      Log.info(
        "store: removed \(store.temporaryFilesRemoved) temporary file(s) left by an earlier run")
    }
    if let journal { restoreQueue(from: journal) }
  }

  /// Queues again what the journal kept from the last run (before the sender starts), rebuilt for the
  /// destinations configured now.
  private func restoreQueue(from journal: ExportJournal) {
    let replay = journal.replay()
    let (batches, unroutable) = Self.restoredBatches(replay.entries, configuration: configuration)
    for name in unroutable { journal.remove(name: name) }
    queue.restore(batches, corrupt: replay.corrupt)
    let restored = queue.snapshot.windowsRestored
    if !replay.entries.isEmpty || replay.corrupt > 0 {
      Log.info(
        "export journal: \(restored) window(s) from the last run queued again, "
          + "\(batches.count - restored) over the queue's bound dropped, "
          + "\(unroutable.count) for destinations no longer configured deleted, "
          + "\(replay.corrupt) unreadable entr\(replay.corrupt == 1 ? "y" : "ies") skipped")
    }
  }

  /// The journal's entries as export batches for the current configuration: its endpoints and its
  /// headers (the journal keeps neither, only each request's per-window suffix and body headers). Requests
  /// for destinations no longer configured are left out; returns the names of entries with none left.
  static func restoredBatches(
    _ entries: [ExportJournal.Entry], configuration: AgentConfiguration
  ) -> (batches: [ExportBatch], unroutable: [String]) {
    var batches: [ExportBatch] = []
    var unroutable: [String] = []
    for entry in entries {
      var requests: [ExportRequest] = []
      for stored in entry.requests {
        let target: (endpoint: HTTPEndpoint, headers: [(String, String)])?
        switch stored.destination {
        case "otlp-profiles":
          target = configuration.profilesEndpoint.map { ($0, configuration.headers) }
        case "otlp-traces":
          target = configuration.tracesEndpoint.map { ($0, configuration.headers) }
        case "pyroscope":
          target = configuration.pyroscopeEndpoint.map {
            ($0.appendingPath(stored.suffix), configuration.pyroscopeHeaders)
          }
        default: target = nil
        }
        guard let target else { continue }
        let bodyHeaders = stored.bodyHeaders.compactMap { $0.count == 2 ? ($0[0], $0[1]) : nil }
        requests.append(
          ExportRequest(
            destination: stored.destination, endpoint: target.endpoint,
            headers: target.headers + bodyHeaders, body: stored.body, suffix: stored.suffix,
            bodyHeaders: bodyHeaders))
      }
      if requests.isEmpty {
        unroutable.append(entry.name)
      } else {
        batches.append(ExportBatch(sequence: 0, requests: requests, name: entry.name))
      }
    }
    return (batches, unroutable)
  }

  func handle(_ window: RecordedWindow) {
    let now = KernelClock.monotonicNanos()
    // The agent's own export requests are HTTP too; tracing them would feed every export back into the next.
    let ownPID = getpid()
    var spans = window.exchanges.filter { $0.pid != ownPID }.compactMap {
      HTTPSpan(exchange: $0, clock: window.clock)
    }
    var samplesBySpan: [[UInt8]: Int64] = [:]
    for sample in window.profile.samples {
      if let id = sample.span?.spanID { samplesBySpan[id, default: 0] += sample.count }
    }
    for index in spans.indices {
      spans[index].cpuSamples = samplesBySpan[spans[index].spanID] ?? 0
    }
    if spans.count > configuration.maximumSpansPerWindow {
      // Spans with CPU samples are the ones a profile can explain; then the slowest.
      spans.sort {
        (($0.cpuSamples ?? 0) > 0 ? 1 : 0, $0.durationNanos) > (
          ($1.cpuSamples ?? 0) > 0 ? 1 : 0, $1.durationNanos
        )
      }
      lock.withLock { spansDropped += spans.count - configuration.maximumSpansPerWindow }
      spans.removeLast(spans.count - configuration.maximumSpansPerWindow)
    }

    var byProcess: [Int32: [ProfileSample]] = [:]
    for sample in window.profile.samples { byProcess[sample.pid, default: []].append(sample) }
    var resources: [Int32: [(key: String, value: OTLPResourceValue)]] = [:]
    func resource(_ pid: Int32, threadName: String) -> [(key: String, value: OTLPResourceValue)] {
      if let known = resources[pid] { return known }
      let process = metadata.resource(pid: pid, threadName: threadName, now: now)
      var attributes: [(key: String, value: OTLPResourceValue)] = [
        ("service.name", .string(process.serviceName)), ("host.name", .string(hostName)),
        ("process.pid", .int(Int64(pid))),
        ("process.executable.name", .string(process.executableName)),
      ]
      if let path = process.executablePath {
        attributes.append(("process.executable.path", .string(path)))
      }
      if let container = process.containerID {
        attributes.append(("container.id", .string(container)))
      }
      let taken = Set(attributes.map(\.key))
      for (key, value) in configuration.resourceAttributes where !taken.contains(key) {
        attributes.append((key, .string(value)))
      }
      resources[pid] = attributes
      return attributes
    }

    var requests: [ExportRequest] = []
    if let endpoint = configuration.profilesEndpoint, !window.profile.samples.isEmpty {
      let groups = byProcess.keys.sorted().map { pid in
        let samples = byProcess[pid]!
        var profile = window.profile
        profile.samples = samples
        return OTLPResourceGroup(
          attributes: resource(pid, threadName: samples[0].threadName), profile: profile)
      }
      do {
        let body = try OTLPResourceGroupEncoder.encode(groups)
        requests.append(
          try request("otlp-profiles", endpoint, body, contentType: "application/x-protobuf"))
      } catch {
        Log.info("window \(window.sequence): cannot encode the OTLP profiles export: \(error)")
      }
    }
    if let endpoint = configuration.tracesEndpoint, !spans.isEmpty {
      var spansByProcess: [Int32: [HTTPSpan]] = [:]
      for span in spans { spansByProcess[span.pid, default: []].append(span) }
      let groups = spansByProcess.keys.sorted().map { pid in
        OTLPSpanGroup(
          attributes: resource(pid, threadName: "pid \(pid)"), spans: spansByProcess[pid]!)
      }
      do {
        let body = try OTLPTraceEncoder.protobuf(groups)
        requests.append(
          try request("otlp-traces", endpoint, body, contentType: "application/x-protobuf"))
      } catch {
        Log.info("window \(window.sequence): cannot encode the OTLP traces export: \(error)")
      }
    }
    if let base = configuration.pyroscopeEndpoint, !window.profile.samples.isEmpty {
      let from = window.profile.startTimeNanos / 1_000_000_000
      let until = max(
        from + 1,
        (window.profile.startTimeNanos + window.profile.durationNanos + 999_999_999) / 1_000_000_000
      )
      let name = "\(configuration.pyroscopeApplication){host=\(hostName)}"
      let encodedName = name.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? name
      let suffix =
        "/ingest?name=\(encodedName)&format=pprof&from=\(from)&until=\(until)&sampleRate=\(configuration.frequency)&spyName=flamespan"
      let endpoint = base.appendingPath(suffix)
      if let body = try? Gzip.compress(PprofEncoder.encode(window.profile)) {
        let bodyHeaders = [("Content-Type", "application/octet-stream")]
        requests.append(
          ExportRequest(
            destination: "pyroscope", endpoint: endpoint,
            headers: configuration.pyroscopeHeaders + bodyHeaders, body: body,
            suffix: suffix, bodyHeaders: bodyHeaders))
      }
    }
    // One name for the window in the store and in the export journal.
    let name = store?.newWindowName(for: window.profile)
    queue.enqueue(ExportBatch(sequence: window.sequence, requests: requests, name: name))

    if let store {
      var services: [Int32: String] = [:]
      for pid in Set(spans.map(\.pid)) {
        services[pid] = metadata.resource(pid: pid, threadName: "pid \(pid)", now: now).serviceName
      }
      do {
        try store.add(profile: window.profile, spans: spans, name: name, services: services)
      } catch {
        lock.withLock { storeErrors += 1 }
        Log.info("window \(window.sequence): cannot write to the store: \(error)")
      }
    }
    lock.withLock {
      windowsHandled += 1
      spansSeen += spans.count
    }
    if configuration.statusLines { Log.info(statusLine(window: window, spans: spans.count)) }
  }

  private func request(
    _ destination: String, _ endpoint: HTTPEndpoint, _ body: [UInt8], contentType: String
  )
    throws(ExportError) -> ExportRequest
  {
    var bodyHeaders = [("Content-Type", contentType)]
    var payload = body
    if configuration.gzip {
      payload = try Gzip.compress(body)
      bodyHeaders.append(("Content-Encoding", "gzip"))
    }
    return ExportRequest(
      destination: destination, endpoint: endpoint, headers: configuration.headers + bodyHeaders,
      body: payload, bodyHeaders: bodyHeaders)
  }

  private func statusLine(window: RecordedWindow, spans: Int) -> String {
    let stats = recorder.statistics
    let exports = queue.snapshot
    let cpu = OwnUsage.cpuNanos()
    let wall = KernelClock.monotonicNanos()
    let share = lock.withLock {
      defer { lastStatus = (cpu, wall) }
      return Double(cpu - lastStatus.cpuNanos) / Double(max(wall - lastStatus.wall, 1)) * 100
    }
    let errors = exports.exportErrors.values.reduce(0, +)
    var storeText = ""
    if let store {
      let evicted = store.evicted
      storeText =
        "store \(store.windowCount) windows evicted \(evicted[.maximumBytes] ?? 0) for max-bytes "
        + "\(evicted[.diskFull] ?? 0) for disk-full; "
    }
    return
      "window \(window.sequence): \(window.profile.totalCount) samples, \(stats.sampler.lostSamples) lost, "
      + "\(spans) spans; export sent \(exports.windowsExported) queued \(exports.windowsQueued) "
      + "dropped \(exports.windowsDropped) errors \(errors); \(storeText)"
      + "agent cpu \(String(format: "%.2f", share))% rss \(OwnUsage.residentBytes() >> 20) MiB"
  }

  var counts: (windows: Int, spans: Int, storeErrors: Int, spansDropped: Int) {
    lock.withLock { (windowsHandled, spansSeen, storeErrors, spansDropped) }
  }

  /// The /metrics lines of the store's evictions and the export journal, in the Prometheus text format.
  var storeMetricsText: String {
    var out = ""
    func metric(_ name: String, _ type: String, _ help: String, _ values: [(String, Int)]) {
      out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
      for (labels, value) in values {
        out += "\(name)\(labels.isEmpty ? "" : "{\(labels)}") \(value)\n"
      }
    }
    let evicted = store?.evicted ?? [:]
    metric(
      "flamespan_store_windows_evicted_total", "counter",
      "Windows deleted from the store, by reason: retention (age), max-bytes (--store-max-bytes), disk-full (a write found no space).",
      StoreEviction.allCases.map { ("reason=\"\($0.rawValue)\"", evicted[$0] ?? 0) })
    metric(
      "flamespan_store_temporary_files_removed_total", "counter",
      "Temporary files an earlier run left in the store, removed at start.",
      [("", store?.temporaryFilesRemoved ?? 0)])
    let exports = queue.snapshot
    metric(
      "flamespan_export_windows_restored_total", "counter",
      "Windows the export journal kept from the last run and queued again at start.",
      [("", exports.windowsRestored)])
    metric(
      "flamespan_export_journal_corrupt_total", "counter",
      "Export journal entries unreadable at start (truncated or corrupt): skipped.",
      [("", exports.journalCorrupt)])
    metric(
      "flamespan_export_journal_write_errors_total", "counter",
      "Windows the export journal could not write: queued in memory only.",
      [("", exports.journalWriteErrors)])
    return out
  }
}

/// The agent's own CPU time and memory, for /metrics and the status line.
enum OwnUsage {
  static func cpuNanos() -> UInt64 {
    var usage = rusage()
    getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
    let micros =
      (Int64(usage.ru_utime.tv_sec) + Int64(usage.ru_stime.tv_sec)) * 1_000_000
      + Int64(usage.ru_utime.tv_usec) + Int64(usage.ru_stime.tv_usec)
    return UInt64(max(micros, 0)) * 1000
  }

  static func residentBytes() -> UInt64 {
    guard let statm = ProcessMetadataCache.readSmallFile("/proc/self/statm") else { return 0 }
    let fields = String(decoding: statm, as: UTF8.self).split(separator: " ")
    guard fields.count > 1, let pages = UInt64(fields[1]) else { return 0 }
    return pages * UInt64(sysconf(Int32(_SC_PAGESIZE)))
  }
}

/// Log lines on stderr with a timestamp, as journald and kubectl logs show them.
enum Log {
  static func info(_ text: String) {
    let seconds = Double(KernelClock.unixNanos()) / 1e9
    let stamp = ISO8601DateFormatter.string(
      from: Date(timeIntervalSince1970: seconds), timeZone: TimeZone(identifier: "UTC")!,
      formatOptions: [.withInternetDateTime])
    // Unbuffered, one write per line, so lines from several threads never interleave mid-line.
    try? FileHandle.standardError.write(
      contentsOf: Data("\(stamp) flamespan-agent: \(text)\n".utf8))
  }
}
