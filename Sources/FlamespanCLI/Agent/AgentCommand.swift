import ArgumentParser
import FlamespanModel
import FlamespanRecorder
import Foundation

struct AgentCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "agent",
    abstract:
      "Profile the whole machine continuously: export to OTLP or Pyroscope, keep a local store, serve a UI.",
    discussion: """
      Samples every CPU (19 Hz by default) and traces HTTP/1.x requests, cuts a window every --export-interval, symbolizes it on a second thread and then, for each window: sends OTLP profiles (protobuf, layout v1.10.0, samples linked to spans) to {endpoint}/v1development/profiles and the spans to {endpoint}/v1/traces, optionally pushes pprof to Pyroscope, and writes it to the local store that the UI and API on --listen read. Failed exports are retried with backoff from a bounded queue; past its bound the oldest windows are dropped and counted in /metrics. SIGINT or SIGTERM exports the last window, detaches every BPF program and exits 0. SIGHUP is ignored, with a log line: the configuration is read at start only, so restart the agent to apply a changed --config.

      Settings come from flags, then OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROFILES_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS, OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, then --config FILE (lines of `key = value`, the keys being the long flag names without dashes in front, e.g. `endpoint = http://collector:4318`), then defaults.

      The UI and API on --listen (loopback by default) are bounded so that no client can take them down: a request head must arrive within 10 s, slow connections give way to new ones past 64 per client address, /api/ queries run on their own two threads (503 when 8 more wait), so /metrics, / and /healthz always answer; one query reads at most --max-query-range (413 past it) within --query-budget (503 past it). Only Host headers naming the agent are answered (403 otherwise; --allowed-hosts adds names), --api-token-file requires a bearer token (401 without), and listening beyond loopback without a token is refused unless --insecure-listen. /healthz answers 200 to anyone.

      Each process is its own OTLP resource: host.name, process.pid, process.executable.name and .path, container.id (from /proc/PID/cgroup) and service.name (the process's own OTEL_SERVICE_NAME, else --service-name, else the executable name). Command lines are never read.

      Examples:
        flamespan agent --endpoint http://127.0.0.1:4318
        flamespan agent --pyroscope http://pyroscope:4040 --store /var/lib/flamespan
        flamespan agent --config /etc/flamespan/agent.conf
      """
  )

  @Option(help: ArgumentHelp("Config file of `key = value` lines.", valueName: "path"))
  var config: String?
  @Option(
    name: [.customShort("F"), .long],
    help: ArgumentHelp("Samples per second on each CPU (default 19).", valueName: "hz"))
  var frequency: Int?
  @Option(
    help: ArgumentHelp(
      "Window length: 10s (default), 500ms, 1m; 100ms to 1d.", valueName: "duration"))
  var exportInterval: String?
  @Option(
    help: ArgumentHelp(
      "OTLP/HTTP base URL (http://host:4318); signal paths are appended.", valueName: "url"))
  var endpoint: String?
  @Option(help: ArgumentHelp("Full URL for profiles, used as is.", valueName: "url"))
  var profilesEndpoint: String?
  @Option(help: ArgumentHelp("Full URL for traces, used as is.", valueName: "url"))
  var tracesEndpoint: String?
  @Option(help: ArgumentHelp("Extra request headers: k1=v1,k2=v2.", valueName: "list"))
  var headers: String?
  @Option(help: ArgumentHelp("Extra resource attributes: k1=v1,k2=v2.", valueName: "list"))
  var resourceAttributes: String?
  @Option(help: ArgumentHelp("service.name of processes that set none.", valueName: "name"))
  var serviceName: String?
  @Option(help: ArgumentHelp("host.name to report (default: this machine's).", valueName: "name"))
  var hostName: String?
  @Option(help: ArgumentHelp("gzip request bodies (default true).", valueName: "bool"))
  var gzip: String?
  @Option(help: ArgumentHelp("Pyroscope base URL; pushes pprof to /ingest.", valueName: "url"))
  var pyroscope: String?
  @Option(
    help: ArgumentHelp("Pyroscope application name (default flamespan.cpu).", valueName: "name"))
  var pyroscopeApp: String?
  @Option(
    help: ArgumentHelp(
      "Local store directory (default /var/lib/flamespan; empty: none).", valueName: "dir"))
  var store: String?
  @Option(
    help: ArgumentHelp(
      "Keep stored windows this long (default 24h; 1m to 3650d).", valueName: "duration"))
  var retention: String?
  @Option(
    help: ArgumentHelp(
      "Cap on the store's size: bytes, or with KiB, MiB, GiB, TiB (default 1GiB; 1MiB to 1024TiB).",
      valueName: "bytes"))
  var storeMaxBytes: String?
  @Option(
    help: ArgumentHelp(
      "UI and API address (default 127.0.0.1:7470; off: none).", valueName: "host:port"))
  var listen: String?
  @Option(
    help: ArgumentHelp(
      "More Host header values the UI and API answer to, besides the listen address, localhost, 127.0.0.1 and [::1] at its port: host (any port) or host:port, comma-separated; * accepts any (default none). Others get 403, against DNS rebinding.",
      valueName: "list"))
  var allowedHosts: String?
  @Option(
    help: ArgumentHelp(
      "File holding a token that the API and /metrics then require as `Authorization: Bearer <token>` (401 without); it must not be open to other users (chmod 600). /healthz stays open.",
      valueName: "path"))
  var apiTokenFile: String?
  @Flag(
    help:
      "Serve the UI and API beyond loopback without --api-token-file (refused otherwise); a warning is logged."
  )
  var insecureListen = false
  @Option(
    help: ArgumentHelp(
      "Widest time range one API query may read (default 6h); wider ones get 413.",
      valueName: "duration"))
  var maxQueryRange: String?
  @Option(
    help: ArgumentHelp(
      "Time one API query may take (default 5s); past it the query stops with 503.",
      valueName: "duration"))
  var queryBudget: String?
  @Option(help: ArgumentHelp("Windows the export queue holds (default 60).", valueName: "n"))
  var queueWindows: String?
  @Option(
    help: ArgumentHelp(
      "Bytes the export queue holds (default 64MiB; 64KiB to 1TiB).", valueName: "bytes"))
  var queueBytes: String?
  @Option(
    help: ArgumentHelp(
      "Longest wait between retries (default 30s; 1ms to 1d).", valueName: "duration"))
  var retryMaxBackoff: String?
  @Option(help: ArgumentHelp("Trace HTTP/1.x requests (default true).", valueName: "bool"))
  var traceHttp: String?
  @Option(
    help: ArgumentHelp(
      "Resident bytes past which symbolizer caches are dropped (default 201326592 = 192 MiB; 0: never).",
      valueName: "bytes"))
  var memoryBudget: String?
  @Option(
    help: ArgumentHelp(
      "Estimated bytes of parsed binaries the symbolizer keeps between windows (default 25165824 = 24 MiB; 0: no byte bound, 64 files).",
      valueName: "bytes"))
  var symbolizerCache: String?
  @Option(
    help: ArgumentHelp(
      "Spans kept per window: those with CPU samples first, then the slowest (default 5000).",
      valueName: "n"))
  var maxSpans: String?
  @Option(help: ArgumentHelp("Log a status line every window (default true).", valueName: "bool"))
  var statusLines: String?
  @Option(
    help: ArgumentHelp(
      "How to walk user stacks (default auto): auto copies the top of each user stack and unwinds Go, JIT code named by perf maps, and native code with or without frame pointers; dwarf uses DWARF CFI only; fp is the kernel's frame-pointer walk (cheapest, shortest stacks). See `flamespan record --help`.",
      valueName: "auto|dwarf|fp"))
  var unwind: String?

  @Flag(help: "Print the effective settings, each with where it came from, and exit.")
  var printConfig = false

  func settings(environment: [String: String]) throws -> AgentSettings {
    var settings = AgentSettings()
    let flags: [(String, String?)] = [
      ("frequency", frequency.map(String.init)), ("export-interval", exportInterval),
      ("endpoint", endpoint), ("profiles-endpoint", profilesEndpoint),
      ("traces-endpoint", tracesEndpoint),
      ("headers", headers), ("resource-attributes", resourceAttributes),
      ("service-name", serviceName),
      ("host-name", hostName), ("gzip", gzip), ("pyroscope", pyroscope),
      ("pyroscope-app", pyroscopeApp),
      ("store", store), ("retention", retention), ("store-max-bytes", storeMaxBytes),
      ("listen", listen),
      ("queue-windows", queueWindows), ("queue-bytes", queueBytes),
      ("retry-max-backoff", retryMaxBackoff),
      ("trace-http", traceHttp), ("status-lines", statusLines), ("memory-budget", memoryBudget),
      ("max-spans", maxSpans), ("symbolizer-cache", symbolizerCache), ("unwind", unwind),
      ("allowed-hosts", allowedHosts), ("api-token-file", apiTokenFile),
      ("insecure-listen", insecureListen ? "true" : nil), ("max-query-range", maxQueryRange),
      ("query-budget", queryBudget),
    ]
    for (key, value) in flags { settings.fill(key, value, source: "--\(key)") }
    let variables: [(String, String)] = [
      ("endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT"),
      ("profiles-endpoint", "OTEL_EXPORTER_OTLP_PROFILES_ENDPOINT"),
      ("traces-endpoint", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
      ("headers", "OTEL_EXPORTER_OTLP_HEADERS"),
      ("resource-attributes", "OTEL_RESOURCE_ATTRIBUTES"),
      ("service-name", "OTEL_SERVICE_NAME"),
    ]
    for (key, variable) in variables {
      settings.fill(key, environment[variable].flatMap { $0.isEmpty ? nil : $0 }, source: variable)
    }
    if let config {
      for (key, value) in try AgentSettings.parseFile(config) {
        settings.fill(key, value, source: config)
      }
    }
    return settings
  }

  func run() throws {
    StopSignal.install(hangUp: .ignore)
    let configuration: AgentConfiguration
    do {
      configuration = try settings(environment: ProcessInfo.processInfo.environment).resolve()
    } catch {
      Console.error("flamespan agent: \(error)")
      throw ExitCode.validationFailure
    }
    if printConfig {
      let merged = try settings(environment: ProcessInfo.processInfo.environment)
      print(configurationText(configuration, merged))
      return
    }
    var store: WindowStore?
    if let directory = configuration.storeDirectory {
      do {
        store = try WindowStore(
          directory: directory, maximumAgeNanos: configuration.retentionNanos,
          maximumBytes: configuration.storeMaximumBytes)
      } catch {
        Console.error("flamespan agent: cannot use the store \(directory): \(error)")
        throw ExitCode(1)
      }
    }
    let agent = Agent(configuration: configuration, store: store)
    var server: HTTPServer?
    if let address = configuration.listen {
      do {
        let counters = HTTPServerCounters()
        let api = AgentAPI(agent: agent, counters: counters)
        server = try HTTPServer(
          address: address, allowedHosts: configuration.allowedHosts,
          token: configuration.apiToken, counters: counters
        ) { api.handle($0) }
      } catch {
        Console.error("flamespan agent: \(error)")
        throw ExitCode(1)
      }
    }
    server?.start()
    if let address = configuration.listen, !AgentSettings.isLoopback(address),
      configuration.apiToken == nil
    {
      Log.info(
        "warning: --insecure-listen: the UI and API on \(address) are open to anyone who can reach it, without a token"
      )
    }
    agent.queue.start()
    Log.info(
      "sampling every CPU at \(configuration.frequency) Hz, windows of \(Double(configuration.exportIntervalNanos) / 1e9)s"
        + (configuration.profilesEndpoint.map { "; profiles to \($0)" } ?? "")
        + (configuration.tracesEndpoint.map { "; traces to \($0)" } ?? "")
        + (configuration.pyroscopeEndpoint.map { "; pyroscope at \($0)" } ?? "")
        + (store.map { "; store \($0.directory.path)" } ?? "")
        + (server.map {
          "; UI on http://\(configuration.listen!.split(separator: ":").dropLast().joined(separator: ":")):\($0.boundPort)/"
        } ?? ""))

    let stopRequest = StopClock()
    do {
      try agent.recorder.run(
        shouldStop: { stopRequest.check() },
        onWindow: { agent.handle($0) })
    } catch {
      Console.error("flamespan agent: \(error)")
      _ = agent.queue.drain(until: KernelClock.monotonicNanos() + 2_000_000_000)
      throw ExitCode(1)
    }
    if let reason = agent.recorder.statistics.l7Unavailable {
      Log.info("HTTP tracing was off: \(reason)")
    }
    // Five seconds from the signal to exit: what is left after the last window gets symbolized goes to
    // the final export attempts.
    let deadline = (stopRequest.requestedAt ?? KernelClock.monotonicNanos()) + 4_300_000_000
    let lost = agent.queue.drain(until: deadline)
    server?.stop()
    let exports = agent.queue.snapshot
    let recorded = agent.recorder.statistics
    Log.info(
      "stopped: \(recorded.windowsCut) windows cut, \(recorded.windowsDroppedBeforeSymbolization) dropped before symbolization; "
        + "\(exports.windowsExported) exported, \(exports.windowsDropped) dropped from the export queue, \(lost) unsent at exit; "
        + "BPF programs detached"
    )
  }
}

/// One `key = value  # source` line per setting, in the config file's syntax, header values masked
/// (they usually carry credentials).
func configurationText(_ configuration: AgentConfiguration, _ settings: AgentSettings) -> String {
  func source(_ key: String) -> String { settings.values[key]?.source ?? "default" }
  let lines: [(String, String)] = [
    ("frequency", String(configuration.frequency)),
    ("export-interval", "\(Double(configuration.exportIntervalNanos) / 1e9)s"),
    ("profiles-endpoint", configuration.profilesEndpoint?.description ?? ""),
    ("traces-endpoint", configuration.tracesEndpoint?.description ?? ""),
    ("headers", configuration.headers.map { "\($0.0)=***" }.joined(separator: ",")),
    (
      "resource-attributes",
      configuration.resourceAttributes.map { "\($0.0)=\($0.1)" }.joined(separator: ",")
    ),
    ("service-name", configuration.serviceName ?? ""),
    ("gzip", String(configuration.gzip)),
    ("pyroscope", configuration.pyroscopeEndpoint?.description ?? ""),
    ("store", configuration.storeDirectory ?? ""),
    ("retention", "\(Double(configuration.retentionNanos) / 1e9)s"),
    ("listen", configuration.listen ?? "off"),
    ("allowed-hosts", configuration.allowedHosts.joined(separator: ",")),
    ("api-token-file", configuration.apiTokenFile ?? ""),
    ("insecure-listen", String(configuration.insecureListen)),
    ("max-query-range", "\(Double(configuration.queryMaximumRangeNanos) / 1e9)s"),
    ("query-budget", "\(Double(configuration.queryBudgetNanos) / 1e9)s"),
    ("queue-windows", String(configuration.queueLimits.maximumWindows)),
    ("queue-bytes", String(configuration.queueLimits.maximumBytes)),
    ("trace-http", String(configuration.traceHTTP)),
    ("memory-budget", configuration.memoryBudgetBytes.map(String.init) ?? "0"),
    ("symbolizer-cache", configuration.symbolizerCacheBytes.map(String.init) ?? "0"),
    ("unwind", configuration.unwinding.rawValue),
  ]
  return lines.map { key, value in
    let origin =
      key == "profiles-endpoint" && settings.values[key] == nil
        && settings.values["endpoint"] != nil
      ? source("endpoint")
      : key == "traces-endpoint" && settings.values[key] == nil
        && settings.values["endpoint"] != nil
        ? source("endpoint") : source(key)
    return "\(key) = \(value)  # \(origin)"
  }.joined(separator: "\n")
}

/// Remembers when SIGINT or SIGTERM first arrived, which starts the shutdown budget.
final class StopClock: @unchecked Sendable {
  private(set) var requestedAt: UInt64?
  private var hangUpsLogged = 0

  func check() -> Bool {
    if requestedAt != nil { return true }
    let hangUps = StopSignal.ignoredHangUps
    if hangUps != hangUpsLogged {
      hangUpsLogged = hangUps
      Log.info(
        "SIGHUP ignored: the configuration is read at start only; restart the agent to apply a change"
      )
    }
    guard StopSignal.requested() else { return false }
    requestedAt = KernelClock.monotonicNanos()
    return true
  }
}
