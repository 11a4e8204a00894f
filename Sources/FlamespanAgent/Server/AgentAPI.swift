import FlamespanExport
import FlamespanModel
import FlamespanRuntimes
import Foundation

/// Routes of the loopback UI and API. Times in queries are Unix milliseconds.
///
/// Every store query is bounded: its range by --max-query-range (413 past it) and its time by
/// --query-budget (503 past it), each answered with a JSON message that says what to narrow.
struct AgentAPI: Sendable {
  let agent: Agent
  var counters = HTTPServerCounters()

  func handle(_ request: HTTPRequest) -> HTTPServerResponse {
    switch request.path {
    case "/", "/index.html":
      return HTTPServerResponse(
        status: 200, contentType: "text/html; charset=utf-8", body: Array(UIPage.html.utf8))
    case "/metrics":
      return HTTPServerResponse(
        status: 200, contentType: "text/plain; version=0.0.4",
        body: Array(AgentMetrics.render(agent, server: counters).utf8))
    case "/api/profile":
      return profile(request)
    case "/api/spans":
      return spans(request)
    case "/api/processes":
      return processes(request)
    default:
      let parts = request.path.split(separator: "/")
      if parts.count == 4, parts[0] == "api", parts[1] == "traces", parts[3] == "profile" {
        return traceProfile(traceID: String(parts[2]), request)
      }
      return .text(404, "no such path: \(request.path)\n")
    }
  }

  private var maximumRangeMillis: Int64 { agent.configuration.queryMaximumRangeNanos / 1_000_000 }

  /// The store and the range a query reads, or the answer that refuses it.
  private func storeAndRange(_ request: HTTPRequest)
    -> Result<(SQLiteStore, Int64, Int64), QueryRefusal>
  {
    guard let store = agent.store else {
      return .failure(QueryRefusal(.text(404, "the agent runs without a store\n")))
    }
    return range(request).map { (store, $0.from, $0.to) }
  }

  /// [from, to] from the query (default: the last 15 minutes), or the refusal to send instead.
  private func range(_ request: HTTPRequest) -> Result<(from: Int64, to: Int64), QueryRefusal> {
    let now = KernelClock.unixNanos() / 1_000_000
    guard let to = request.query["to"].map({ Int64($0) }) ?? now else {
      return .failure(QueryRefusal(.jsonError(400, "to must be Unix milliseconds")))
    }
    guard let from = request.query["from"].map({ Int64($0) }) ?? (to - 15 * 60 * 1000) else {
      return .failure(QueryRefusal(.jsonError(400, "from must be Unix milliseconds")))
    }
    guard from <= to else {
      return .failure(QueryRefusal(.jsonError(400, "from (\(from)) is after to (\(to))")))
    }
    let span = to.subtractingReportingOverflow(from)
    guard !span.overflow, span.partialValue <= maximumRangeMillis else {
      counters.add("range_too_wide")
      return .failure(
        QueryRefusal(
          .jsonError(
            413,
            "the range from=\(from) to=\(to) spans \(Self.hours(span.overflow ? .max : span.partialValue)); "
              + "one query may span at most \(Self.hours(maximumRangeMillis)) (--max-query-range): "
              + "narrow from and to, or query the range in parts")))
    }
    return .success((from, to))
  }

  private static func hours(_ millis: Int64) -> String {
    millis >= 3_600_000
      ? String(format: "%.1f h", Double(millis) / 3_600_000)
      : String(format: "%.1f min", Double(millis) / 60_000)
  }

  /// When this query must give up: --query-budget from now.
  private func deadline() -> UInt64 {
    KernelClock.monotonicNanos() + agent.configuration.queryBudgetNanos
  }

  /// The answer to a store query that did not finish: past its budget (503, what to narrow), or a store
  /// that could not be read (500, what the store said).
  private func failed(_ failure: StoreQueryFailure) -> HTTPServerResponse {
    switch failure {
    case .unreadable(let error):
      return .jsonError(500, "\(error)")
    case .overBudget(let stopped):
      counters.add("over_budget")
      var response = HTTPServerResponse.jsonError(
        503,
        "the query read \(stopped.windowsRead) of \(stopped.windowsTotal) windows in its "
          + "\(Double(agent.configuration.queryBudgetNanos) / 1e9) s budget (--query-budget) and was stopped: "
          + "narrow from and to, or filter by pid")
      response.headers.append(("Retry-After", "5"))
      return response
    }
  }

  private func profile(_ request: HTTPRequest) -> HTTPServerResponse {
    let (store, from, to): (SQLiteStore, Int64, Int64)
    switch storeAndRange(request) {
    case .failure(let refusal): return refusal.response
    case .success(let query): (store, from, to) = query
    }
    let pid = request.query["pid"].flatMap { Int32($0) }
    if request.query["pid"] != nil && pid == nil { return .text(400, "pid must be a number\n") }
    do {
      // Only pprof carries the samples' span labels.
      let format = request.query["format"] ?? "json"
      let profile = try store.profile(
        fromMillis: from, toMillis: to, pid: pid, withSpans: format == "pprof",
        deadline: deadline())
      return render(profile, format: request.query["format"] ?? "json")
    } catch { return failed(error) }
  }

  /// A trace's (or one span's) profile from anywhere in the retention: one indexed query over the samples
  /// taken in it. `from`/`to`, when given, keep only the windows that overlap them.
  private func traceProfile(traceID: String, _ request: HTTPRequest) -> HTTPServerResponse {
    guard let store = agent.store else { return .text(404, "the agent runs without a store\n") }
    let filter: ProfileFilter
    do { filter = try ProfileFilter(traceID: traceID, spanID: request.query["spanId"]) } catch {
      return .text(400, "\(error)\n")
    }
    let bounds: (from: Int64?, to: Int64?)
    switch optionalBounds(request) {
    case .failure(let refusal): return refusal.response
    case .success(let parsed): bounds = parsed
    }
    do {
      let profile = try store.traceProfile(
        traceID: filter.traceID ?? [], spanID: filter.spanID, fromMillis: bounds.from,
        toMillis: bounds.to)
      return render(profile, format: request.query["format"] ?? "json")
    } catch { return failed(error) }
  }

  /// `from` and `to` when the request gives them (a lookup by id needs neither), or the refusal to send.
  private func optionalBounds(_ request: HTTPRequest) -> Result<
    (from: Int64?, to: Int64?), QueryRefusal
  > {
    var bounds: (from: Int64?, to: Int64?) = (nil, nil)
    for (key, value) in [("from", request.query["from"]), ("to", request.query["to"])] {
      guard let value else { continue }
      guard let millis = Int64(value) else {
        return .failure(QueryRefusal(.jsonError(400, "\(key) must be Unix milliseconds")))
      }
      if key == "from" { bounds.from = millis } else { bounds.to = millis }
    }
    if let from = bounds.from, let to = bounds.to, from > to {
      return .failure(QueryRefusal(.jsonError(400, "from (\(from)) is after to (\(to))")))
    }
    return .success(bounds)
  }

  private func render(_ profile: Profile, format: String) -> HTTPServerResponse {
    switch format {
    case "folded":
      return .text(200, FoldedStacks.render(profile))
    case "pprof":
      guard let bytes = try? Gzip.compress(PprofEncoder.encode(profile)) else {
        return .text(500, "cannot compress the profile\n")
      }
      return HTTPServerResponse(status: 200, contentType: "application/octet-stream", body: bytes)
    case "json":
      return .json(FlameTreeJSON.render(profile))
    default:
      return .text(400, "format must be folded, pprof or json\n")
    }
  }

  /// The slowest spans in from/to; with `traceId`, that trace's spans wherever they are in the retention
  /// (from/to then only narrow it when given).
  private func spans(_ request: HTTPRequest) -> HTTPServerResponse {
    let limit = request.query["limit"].flatMap { Int($0) } ?? 100
    let pid = request.query["pid"].flatMap { Int32($0) }
    let spans: [HTTPSpan]
    if let traceID = request.query["traceId"] {
      guard let store = agent.store else { return .text(404, "the agent runs without a store\n") }
      let bounds: (from: Int64?, to: Int64?)
      switch optionalBounds(request) {
      case .failure(let refusal): return refusal.response
      case .success(let parsed): bounds = parsed
      }
      // An id that is not 16 bytes of hex names no stored trace.
      guard let id = HexCoding.decode(traceID), id.count == 16 else { return .json("[]") }
      do {
        spans = try store.spans(
          traceID: id, fromMillis: bounds.from, toMillis: bounds.to, pid: pid, limit: limit)
      } catch { return failed(error) }
    } else {
      let (store, from, to): (SQLiteStore, Int64, Int64)
      switch storeAndRange(request) {
      case .failure(let refusal): return refusal.response
      case .success(let query): (store, from, to) = query
      }
      do {
        spans = try store.slowestSpans(fromMillis: from, toMillis: to, pid: pid, limit: limit)
      } catch { return failed(error) }
    }
    var out = "["
    for (index, span) in spans.enumerated() {
      if index > 0 { out += "," }
      out +=
        "{\"traceId\":\"\(HexCoding.encode(span.traceID))\",\"spanId\":\"\(HexCoding.encode(span.spanID))\""
      out +=
        ",\"parentSpanId\":\(span.parentSpanID.map { "\"\(HexCoding.encode($0))\"" } ?? "null")"
      out += ",\"name\":\(JSONText.quote(span.name)),\"kind\":\(JSONText.quote(span.kind.name))"
      out +=
        ",\"status\":\(span.status.map(String.init) ?? "null"),\"pid\":\(span.pid),\"tid\":\(span.tid)"
      out += ",\"startUnixNanos\":\(span.startUnixNanos),\"durationNanos\":\(span.durationNanos)"
      out += ",\"cpuSamples\":\(span.cpuSamples ?? 0),\"peer\":\(JSONText.quote(span.peerAddress))}"
    }
    return .json(out + "]")
  }

  private func processes(_ request: HTTPRequest) -> HTTPServerResponse {
    let (store, from, to): (SQLiteStore, Int64, Int64)
    switch storeAndRange(request) {
    case .failure(let refusal): return refusal.response
    case .success(let query): (store, from, to) = query
    }
    let totals: [(pid: Int32, threadName: String, samples: Int64)]
    do {
      totals = try store.processTotals(fromMillis: from, toMillis: to, deadline: deadline())
    } catch { return failed(error) }
    let now = KernelClock.monotonicNanos()
    var out = "["
    for (index, entry) in totals.prefix(200).enumerated() {
      let name = agent.metadata.resource(
        pid: entry.pid, threadName: entry.threadName, now: now
      ).executableName
      if index > 0 { out += "," }
      out +=
        "{\"pid\":\(entry.pid),\"name\":\(JSONText.quote(name)),\"samples\":\(entry.samples)}"
    }
    return .json(out + "]")
  }
}

/// The flame graph tree the UI draws: `{"n": name, "v": samples, "c": [children]}`, root first. Every
/// stack starts with a "name [pid]" frame so processes are told apart.
enum FlameTreeJSON {
  final class Node {
    var value: Int64 = 0
    var children: [String: Node] = [:]
  }

  static func render(_ profile: Profile) -> String {
    let root = Node()
    for sample in profile.samples {
      root.value += sample.count
      var node = root
      var names = ["\(sample.threadName) [\(sample.pid)]"]
      for location in sample.stack.reversed() {
        if location.frames.isEmpty {
          names.append(location.displayName)
        } else {
          names.append(contentsOf: location.frames.reversed().map(\.function))
        }
      }
      for name in names {
        let child = node.children[name] ?? Node()
        node.children[name] = child
        child.value += sample.count
        node = child
      }
    }
    var out = ""
    out.reserveCapacity(1 << 16)
    write(root, name: "all", to: &out)
    return
      "{\"totalSamples\":\(root.value),\"periodNanos\":\(profile.periodNanos),\"startUnixNanos\":\(profile.startTimeNanos),\"durationNanos\":\(profile.durationNanos),\"root\":\(out)}"
  }

  private static func write(_ node: Node, name: String, to out: inout String) {
    out += "{\"n\":\(JSONText.quote(name)),\"v\":\(node.value)"
    if !node.children.isEmpty {
      out += ",\"c\":["
      for (index, (childName, child)) in node.children.sorted(by: {
        $0.value.value > $1.value.value
      }).enumerated() {
        if index > 0 { out += "," }
        write(child, name: childName, to: &out)
      }
      out += "]"
    }
    out += "}"
  }
}

/// A refusal to run a query, with the answer that says why.
struct QueryRefusal: Error {
  var response: HTTPServerResponse
  init(_ response: HTTPServerResponse) { self.response = response }
}

/// /metrics in the Prometheus text format.
enum AgentMetrics {
  /// A Prometheus label value: backslash, quote and newline escaped.
  static func labelValue(_ text: String) -> String {
    text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
      .replacingOccurrences(of: "\n", with: "\\n")
  }

  static func render(_ agent: Agent, server: HTTPServerCounters? = nil) -> String {
    let stats = agent.recorder.statistics
    let exports = agent.queue.snapshot
    let counts = agent.counts
    var out = ""
    func metric(
      _ name: String, _ type: String, _ help: String, _ values: [(labels: String, value: String)]
    ) {
      out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
      for (labels, value) in values {
        out += "\(name)\(labels.isEmpty ? "" : "{\(labels)}") \(value)\n"
      }
    }
    func one(_ name: String, _ type: String, _ help: String, _ value: some Numeric) {
      metric(name, type, help, [("", "\(value)")])
    }
    one("flamespan_samples_total", "counter", "CPU samples received.", stats.samplesReceived)
    one(
      "flamespan_lost_samples_total", "counter", "Samples lost in the kernel (ring buffer full).",
      stats.sampler.lostSamples)
    one(
      "flamespan_malformed_records_total", "counter",
      "Ring buffer records that could not be decoded.", stats.malformedRecords)
    one("flamespan_windows_total", "counter", "Windows cut.", stats.windowsCut)
    one(
      "flamespan_windows_dropped_before_symbolization_total", "counter",
      "Windows dropped because symbolization fell behind.", stats.windowsDroppedBeforeSymbolization)
    one("flamespan_spans_total", "counter", "HTTP spans assembled.", counts.spans)
    one(
      "flamespan_spans_dropped_total", "counter",
      "Spans left out past --max-spans per window, and exchanges past the recorder's per-window bound.",
      counts.spansDropped + stats.exchangesDropped)
    one(
      "flamespan_l7_events_lost_total", "counter", "L7 exchange records lost in the kernel.",
      stats.l7.eventsLost)
    one(
      "flamespan_l7_heads_too_long_total", "counter",
      "HTTP request heads that did not end within 8 KiB: a traceparent past it is not seen.",
      stats.l7.headsTooLong)
    one(
      "flamespan_l7_pipelined_not_followed_total", "counter",
      "Pipelined HTTP requests not followed: past the depth, past a read's bound, or unanswered at close.",
      stats.l7.pipelinedNotFollowed)
    one(
      "flamespan_l7_request_lines_cut_total", "counter",
      "HTTP request lines cut at 128 bytes before their query or end.", stats.l7.requestLinesCut)
    one(
      "flamespan_http_tracing_enabled", "gauge", "1 when the L7 tracer runs.",
      stats.l7Unavailable == nil && agent.configuration.traceHTTP ? 1 : 0)
    metric(
      "flamespan_export_requests_total", "counter", "Requests delivered, by destination.",
      exports.requestsSent.sorted { $0.key < $1.key }.map {
        ("destination=\"\($0.key)\"", "\($0.value)")
      })
    metric(
      "flamespan_export_errors_total", "counter",
      "Failed export attempts (retried), by destination.",
      exports.exportErrors.sorted { $0.key < $1.key }.map {
        ("destination=\"\($0.key)\"", "\($0.value)")
      })
    metric(
      "flamespan_export_rejected_total", "counter",
      "Requests refused for good by the backend, by destination.",
      exports.requestsRejected.sorted { $0.key < $1.key }.map {
        ("destination=\"\($0.key)\"", "\($0.value)")
      })
    one(
      "flamespan_export_windows_enqueued_total", "counter", "Windows queued for export.",
      exports.windowsEnqueued)
    one(
      "flamespan_export_windows_total", "counter", "Windows fully exported.",
      exports.windowsExported)
    one(
      "flamespan_export_queue_windows", "gauge", "Windows waiting in the export queue.",
      exports.windowsQueued)
    one(
      "flamespan_export_queue_bytes", "gauge", "Bytes waiting in the export queue.",
      exports.bytesQueued)
    one(
      "flamespan_export_dropped_windows_total", "counter",
      "Windows dropped from the export queue (oldest first).", exports.windowsDropped)
    if let unwinding = stats.unwinding {
      one(
        "flamespan_stacks_unwound_total", "counter",
        "User stacks unwound from their copies (--unwind auto or dwarf).", unwinding.stacksUnwound)
      one(
        "flamespan_stacks_complete_total", "counter",
        "Unwound stacks that reached their outermost frame.", unwinding.stacksComplete)
      metric(
        "flamespan_stacks_stopped_early_total", "counter",
        "Unwound stacks that stopped before their outermost frame, by reason.",
        StackStopReason.allCases.map { reason in
          ("reason=\"\(reason.rawValue)\"", "\(unwinding.stopped[reason] ?? 0)")
        })
      // The worst processes only: a label per process of a whole machine would be unbounded.
      let worst = unwinding.processes.filter { $0.value.stoppedTotal > 0 }
        .sorted { $0.value.stoppedTotal > $1.value.stoppedTotal }.prefix(10)
      metric(
        "flamespan_process_stacks_stopped_early_total", "counter",
        "Stacks that stopped early, for the ten processes with the most, by reason.",
        worst.flatMap { pid, process in
          process.stopped.sorted { $0.key < $1.key }.map { reason, count in
            (
              "pid=\"\(pid)\",process=\"\(Self.labelValue(process.name))\",reason=\"\(reason.rawValue)\"",
              "\(count)"
            )
          }
        })
      one(
        "flamespan_python_processes", "gauge",
        "CPython processes whose frames the sampler walks now.",
        unwinding.interpreters.values.filter(\.walked).count)
      one(
        "flamespan_python_stacks_total", "counter",
        "Samples that carried a walked CPython frame chain.", stats.sampler.pythonStacks)
      one(
        "flamespan_python_stacks_truncated_total", "counter",
        "CPython frame chains deeper than the sampler follows (64): their outermost frames are missing.",
        stats.sampler.pythonTruncated)
      one(
        "flamespan_python_walks_failed_total", "counter",
        "CPython walks stopped by an unreadable thread state or frame.",
        stats.sampler.pythonReadFailed)
      one(
        "flamespan_python_unknown_frames_total", "counter",
        "CPython frames that could not be named (a freed or changed code object, a torn read).",
        unwinding.interpreterUnknownFrames)
      one(
        "flamespan_python_samples_without_frames_total", "counter",
        "Samples in a CPython eval loop that carried no Python frame (taken before the process was walked).",
        unwinding.interpreterSamplesWithoutFrames)
    }
    let lookups = stats.symbolizer.cacheHits + stats.symbolizer.cacheMisses
    one(
      "flamespan_symbolizer_cache_hits_total", "counter", "Symbolizer file cache hits.",
      stats.symbolizer.cacheHits)
    one(
      "flamespan_symbolizer_cache_misses_total", "counter", "Symbolizer file cache misses.",
      stats.symbolizer.cacheMisses)
    one(
      "flamespan_symbolizer_resets_total", "counter",
      "Times the symbolizer caches were dropped to stay under --memory-budget.",
      stats.symbolizerResets)
    one(
      "flamespan_symbolizer_files_parsed_total", "counter", "Files the symbolizer parsed.",
      stats.symbolizer.filesParsed)
    one(
      "flamespan_symbolizer_evictions_total", "counter", "Parsed files dropped from the cache.",
      stats.symbolizer.evictions)
    one(
      "flamespan_symbolizer_cached_bytes", "gauge",
      "Estimated bytes of the parsed files the symbolizer holds (bounded by --symbolizer-cache).",
      stats.symbolizer.cachedBytes)
    one(
      "flamespan_symbolizer_cache_hit_ratio", "gauge", "Hits over lookups since start.",
      lookups == 0 ? 0 : Double(stats.symbolizer.cacheHits) / Double(lookups))
    one(
      "flamespan_symbolize_window_seconds", "gauge", "Time the last window took to symbolize.",
      Double(stats.lastResolveNanos) / 1e9)
    one(
      "flamespan_tracked_processes", "gauge", "Processes whose maps are held.",
      stats.trackedProcesses)
    one(
      "flamespan_store_windows", "gauge", "Windows in the local store.",
      agent.store?.windowCount ?? 0)
    one("flamespan_store_bytes", "gauge", "Bytes in the local store.", agent.store?.totalBytes ?? 0)
    one(
      "flamespan_store_errors_total", "counter", "Windows that could not be stored.",
      counts.storeErrors)
    if let server {
      let refused = server.snapshot
      metric(
        "flamespan_ui_requests_refused_total", "counter",
        "UI and API requests and connections refused or cut short, by reason: head_timeout, write_timeout, "
          + "evicted (a slow connection closed to make room), api_busy, bad_request, forbidden_host, "
          + "unauthorized, over_budget (--query-budget), range_too_wide (--max-query-range).",
        HTTPServerCounters.reasons.map { ("reason=\"\($0)\"", "\(refused[$0] ?? 0)") })
    }
    out += agent.storeMetricsText
    one(
      "process_cpu_seconds_total", "counter", "Agent user and system CPU time.",
      Double(OwnUsage.cpuNanos()) / 1e9)
    one(
      "process_resident_memory_bytes", "gauge", "Agent resident set size.", OwnUsage.residentBytes()
    )
    one(
      "flamespan_uptime_seconds", "gauge", "Seconds since the agent started.",
      Double(KernelClock.monotonicNanos() - agent.startedAt) / 1e9)
    return out
  }
}
