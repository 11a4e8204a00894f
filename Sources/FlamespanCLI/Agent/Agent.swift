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
  let store: WindowStore?
  let metadata: ProcessMetadataCache
  let hostName: String
  private let lock = NSLock()
  private var windowsHandled = 0
  private var spansSeen = 0
  private var spansDropped = 0
  private var storeErrors = 0
  private var lastStatus = (cpuNanos: UInt64(0), wall: UInt64(0))
  let startedAt = Monotonic.now()

  init(configuration: AgentConfiguration, store: WindowStore?) {
    self.configuration = configuration
    var options = ContinuousRecordingOptions()
    options.frequency = configuration.frequency
    options.windowNanos = configuration.exportIntervalNanos
    options.traceHTTP = configuration.traceHTTP
    options.unwinding = configuration.unwinding
    options.memoryBudgetBytes = configuration.memoryBudgetBytes
    options.symbolizer.maxCachedBytes = configuration.symbolizerCacheBytes
    recorder = ContinuousRecorder(options: options)
    queue = ExportQueue(limits: configuration.queueLimits, log: { Log.info($0) })
    self.store = store
    metadata = ProcessMetadataCache(fallbackServiceName: configuration.serviceName)
    hostName = configuration.hostName ?? ProcessMetadataCache.hostName()
    lastStatus = (OwnUsage.cpuNanos(), Monotonic.now())
  }

  func handle(_ window: RecordedWindow) {
    let now = Monotonic.now()
    // The agent's own export requests are HTTP too; tracing them would feed every export back into the next.
    let ownPID = getpid()
    var spans = window.exchanges.filter { $0.pid != ownPID }.compactMap {
      AgentSpan(exchange: $0, monotonicToUnixNanos: window.monotonicToUnixNanos)
    }
    var samplesBySpan: [[UInt8]: Int64] = [:]
    for sample in window.profile.samples {
      if let id = sample.span?.spanID { samplesBySpan[id, default: 0] += sample.count }
    }
    for index in spans.indices {
      spans[index].cpuSamples = samplesBySpan[HexCoding.decode(spans[index].spanID) ?? []] ?? 0
    }
    if spans.count > configuration.maximumSpansPerWindow {
      // Spans with CPU samples are the ones a profile can explain; then the slowest.
      spans.sort {
        ($0.cpuSamples > 0 ? 1 : 0, $0.durationNanos) > (
          $1.cpuSamples > 0 ? 1 : 0, $1.durationNanos
        )
      }
      lock.withLock { spansDropped += spans.count - configuration.maximumSpansPerWindow }
      spans.removeLast(spans.count - configuration.maximumSpansPerWindow)
    }

    var byProcess: [Int32: [ProfileSample]] = [:]
    for sample in window.profile.samples { byProcess[sample.pid, default: []].append(sample) }
    var resources: [Int32: [(key: String, value: ResourceValue)]] = [:]
    func resource(_ pid: Int32, threadName: String) -> [(key: String, value: ResourceValue)] {
      if let known = resources[pid] { return known }
      let process = metadata.resource(pid: pid, threadName: threadName, now: now)
      var attributes: [(key: String, value: ResourceValue)] = [
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
          attributes: resource(pid, threadName: samples[0].threadName).map {
            ($0.key, $0.value.otlp)
          }, profile: profile)
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
      var spansByProcess: [Int32: [AgentSpan]] = [:]
      for span in spans { spansByProcess[span.pid, default: []].append(span) }
      let groups = spansByProcess.keys.sorted().map { pid in
        (resource: resource(pid, threadName: "pid \(pid)"), spans: spansByProcess[pid]!)
      }
      if let built = try? request(
        "otlp-traces", endpoint, TraceEncoder.encode(groups), contentType: "application/x-protobuf")
      {
        requests.append(built)
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
      let endpoint = base.appendingPath(
        "/ingest?name=\(encodedName)&format=pprof&from=\(from)&until=\(until)&sampleRate=\(configuration.frequency)&spyName=flamespan"
      )
      if let body = try? Gzip.compress(PprofEncoder.encode(window.profile)) {
        var headers = configuration.pyroscopeHeaders
        headers.append(("Content-Type", "application/octet-stream"))
        requests.append(
          ExportRequest(destination: "pyroscope", endpoint: endpoint, headers: headers, body: body))
      }
    }
    queue.enqueue(ExportBatch(sequence: window.sequence, requests: requests))

    if let store {
      do { try store.add(profile: window.profile, spans: spans) } catch {
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
    var headers = configuration.headers
    headers.append(("Content-Type", contentType))
    var payload = body
    if configuration.gzip {
      payload = try Gzip.compress(body)
      headers.append(("Content-Encoding", "gzip"))
    }
    return ExportRequest(
      destination: destination, endpoint: endpoint, headers: headers, body: payload)
  }

  private func statusLine(window: RecordedWindow, spans: Int) -> String {
    let stats = recorder.statistics
    let exports = queue.snapshot
    let cpu = OwnUsage.cpuNanos()
    let wall = Monotonic.now()
    let share = lock.withLock {
      defer { lastStatus = (cpu, wall) }
      return Double(cpu - lastStatus.cpuNanos) / Double(max(wall - lastStatus.wall, 1)) * 100
    }
    let errors = exports.exportErrors.values.reduce(0, +)
    return
      "window \(window.sequence): \(window.profile.totalCount) samples, \(stats.sampler.lostSamples) lost, "
      + "\(spans) spans; export sent \(exports.windowsExported) queued \(exports.windowsQueued) "
      + "dropped \(exports.windowsDropped) errors \(errors); "
      + "agent cpu \(String(format: "%.2f", share))% rss \(OwnUsage.residentBytes() >> 20) MiB"
  }

  var counts: (windows: Int, spans: Int, storeErrors: Int, spansDropped: Int) {
    lock.withLock { (windowsHandled, spansSeen, storeErrors, spansDropped) }
  }
}

extension ResourceValue {
  var otlp: OTLPResourceValue {
    switch self {
    case .string(let text): return .string(text)
    case .int(let number): return .int(number)
    }
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
    let seconds = Double(Monotonic.realtimeNanos()) / 1e9
    let stamp = ISO8601DateFormatter.string(
      from: Date(timeIntervalSince1970: seconds), timeZone: TimeZone(identifier: "UTC")!,
      formatOptions: [.withInternetDateTime])
    Console.error("\(stamp) flamespan-agent: \(text)")
  }
}
