import ArgumentParser
import FlamespanAgent
import Foundation

/// Defaults live in AgentConfiguration only; the help quotes them from there.
private func defaultOf(_ key: String) -> String { AgentConfiguration.defaultText(key) }

enum AgentSamplingDefaults: SamplingDefaults {
  static var frequency: String { defaultOf("frequency") }
  static var unwind: String { defaultOf("unwind") }
  static let unwindNote = ""
}

struct AgentCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "agent",
    abstract:
      "Profile the whole machine continuously: export to OTLP or Pyroscope, keep a local store, serve a UI.",
    discussion: """
      Samples every CPU (\(defaultOf("frequency")) Hz by default) and traces HTTP/1.x requests, cuts a window every --export-interval, symbolizes it on a second thread and then, for each window: sends OTLP profiles (protobuf, layout v1.10.0, samples linked to spans) to {endpoint}/v1development/profiles and the spans to {endpoint}/v1/traces, optionally pushes pprof to Pyroscope, and writes it to the local store that the UI and API on --listen read. Failed exports are retried with backoff from a bounded queue; past its bound the oldest windows are dropped and counted in /metrics. SIGINT or SIGTERM exports the last window, detaches every BPF program and exits 0. SIGHUP is ignored, with a log line: the configuration is read at start only, so restart the agent to apply a changed --config.

      Settings come from flags, then OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROFILES_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_EXPORTER_OTLP_CERTIFICATE, OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE, OTEL_EXPORTER_OTLP_CLIENT_KEY (each of these three also as OTEL_EXPORTER_OTLP_PROFILES_… and OTEL_EXPORTER_OTLP_TRACES_…, which win for their signal; config keys profiles-certificate, traces-client-key, …), OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, then --config FILE (lines of `key = value`, the keys being the long flag names without dashes in front, e.g. `endpoint = http://collector:4318`), then defaults.

      The UI and API on --listen (loopback by default) are bounded so that no client can take them down: a request head must arrive within 10 s, slow connections give way to new ones past 64 per client address, /api/ queries run on their own two threads (503 when 8 more wait), so /metrics, / and /healthz always answer; one query reads at most --max-query-range (413 past it) within --query-budget (503 past it). Only Host headers naming the agent are answered (403 otherwise; --allowed-hosts adds names), --api-token-file requires a bearer token (401 without), and listening beyond loopback without a token is refused unless --insecure-listen. /healthz answers 200 to anyone.

      Endpoints may be http:// or https://; https verifies the collector against the system's CA bundle (or --certificate), keeps connections open between windows, and sends gzip bodies unless --gzip false. Only OTLP over HTTP (http/protobuf) is exported: OTEL_EXPORTER_OTLP_PROTOCOL=grpc is accepted with a warning at start (docs/agent.md says why).

      Each process is its own OTLP resource: host.name, process.pid, process.executable.name and .path, container.id (from /proc/PID/cgroup) and service.name (the process's own OTEL_SERVICE_NAME, else --service-name, else the executable name). Command lines are never read.

      Examples:
        flamespan agent --endpoint http://127.0.0.1:4318
        flamespan agent --pyroscope http://pyroscope:4040 --store /var/lib/flamespan
        flamespan agent --config /etc/flamespan/agent.conf
      """
  )

  @Option(help: ArgumentHelp("Config file of `key = value` lines.", valueName: "path"))
  var config: String?
  @OptionGroup var sampling: SamplingOptions<AgentSamplingDefaults>
  @Option(
    help: ArgumentHelp(
      "Window length: \(defaultOf("export-interval")) (default), 500ms, 1m; 100ms to 1d.",
      valueName: "duration"))
  var exportInterval: String?
  @Option(
    help: ArgumentHelp(
      "OTLP/HTTP base URL (http://host:4318); signal paths are appended.", valueName: "url"))
  var endpoint: String?
  @Option(help: ArgumentHelp("Full URL for profiles, used as is.", valueName: "url"))
  var profilesEndpoint: String?
  @Option(help: ArgumentHelp("Full URL for traces, used as is.", valueName: "url"))
  var tracesEndpoint: String?
  @Option(
    help: ArgumentHelp(
      "PEM file of the CA certificates that https endpoints are verified against, instead of the system's bundle.",
      valueName: "path"))
  var certificate: String?
  @Option(
    help: ArgumentHelp(
      "PEM client certificate for collectors that require mutual TLS (with --client-key).",
      valueName: "path"))
  var clientCertificate: String?
  @Option(help: ArgumentHelp("PEM private key of --client-certificate.", valueName: "path"))
  var clientKey: String?
  @Option(
    help: ArgumentHelp(
      "OTLP protocol (default \(defaultOf("protocol"))); grpc and http/json are accepted with a warning and http/protobuf is sent.",
      valueName: "name"))
  var `protocol`: String?
  @Option(help: ArgumentHelp("Extra request headers: k1=v1,k2=v2.", valueName: "list"))
  var headers: String?
  @Option(help: ArgumentHelp("Extra resource attributes: k1=v1,k2=v2.", valueName: "list"))
  var resourceAttributes: String?
  @Option(help: ArgumentHelp("service.name of processes that set none.", valueName: "name"))
  var serviceName: String?
  @Option(help: ArgumentHelp("host.name to report (default: this machine's).", valueName: "name"))
  var hostName: String?
  @Option(
    help: ArgumentHelp("gzip request bodies (default \(defaultOf("gzip"))).", valueName: "bool"))
  var gzip: String?
  @Option(help: ArgumentHelp("Pyroscope base URL; pushes pprof to /ingest.", valueName: "url"))
  var pyroscope: String?
  @Option(
    help: ArgumentHelp(
      "Pyroscope application name (default \(defaultOf("pyroscope-app"))).", valueName: "name"))
  var pyroscopeApp: String?
  @Option(
    help: ArgumentHelp(
      "Local store directory (default \(defaultOf("store")); empty: none).", valueName: "dir"))
  var store: String?
  @Option(
    help: ArgumentHelp(
      "Keep stored windows this long (default \(defaultOf("retention")); 1m to 3650d).",
      valueName: "duration"))
  var retention: String?
  @Option(
    help: ArgumentHelp(
      "Cap on the store's size: bytes, or with KiB, MiB, GiB, TiB (default \(defaultOf("store-max-bytes")); 1MiB to 1024TiB).",
      valueName: "bytes"))
  var storeMaxBytes: String?
  @Option(
    help: ArgumentHelp(
      "UI and API address (default \(defaultOf("listen")); off: none).", valueName: "host:port"))
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
      "Widest time range one API query may read (default \(defaultOf("max-query-range"))); wider ones get 413.",
      valueName: "duration"))
  var maxQueryRange: String?
  @Option(
    help: ArgumentHelp(
      "Time one API query may take (default \(defaultOf("query-budget"))); past it the query stops with 503.",
      valueName: "duration"))
  var queryBudget: String?
  @Option(
    help: ArgumentHelp(
      "Windows the export queue holds (default \(defaultOf("queue-windows"))).", valueName: "n"))
  var queueWindows: String?
  @Option(
    help: ArgumentHelp(
      "Bytes the export queue holds (default \(defaultOf("queue-bytes")); 64KiB to 1TiB).",
      valueName: "bytes"))
  var queueBytes: String?
  @Option(
    help: ArgumentHelp(
      "Longest wait between retries (default \(defaultOf("retry-max-backoff")); 1ms to 1d).",
      valueName: "duration"))
  var retryMaxBackoff: String?
  @Option(
    help: ArgumentHelp(
      "Trace HTTP/1.x requests (default \(defaultOf("trace-http"))).", valueName: "bool"))
  var traceHttp: String?
  @Option(
    help: ArgumentHelp(
      "Resident bytes past which symbolizer caches are dropped (default \(defaultOf("memory-budget")); 0: never).",
      valueName: "bytes"))
  var memoryBudget: String?
  @Option(
    help: ArgumentHelp(
      "Estimated bytes of parsed binaries the symbolizer keeps between windows (default \(defaultOf("symbolizer-cache")); 0: no byte bound, 64 files).",
      valueName: "bytes"))
  var symbolizerCache: String?
  @Option(
    help: ArgumentHelp(
      "Spans kept per window: those with CPU samples first, then the slowest (default \(defaultOf("max-spans"))).",
      valueName: "n"))
  var maxSpans: String?
  @Option(
    help: ArgumentHelp(
      "Log a status line every window (default \(defaultOf("status-lines"))).", valueName: "bool"))
  var statusLines: String?
  @Flag(help: "Print the effective settings, each with where it came from, and exit.")
  var printConfig = false

  /// Each flag by its long name (the config file's key), nil when not given.
  var flagValues: [(key: String, value: String?)] {
    [
      ("frequency", sampling.frequency.map(String.init)), ("export-interval", exportInterval),
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
      ("max-spans", maxSpans), ("symbolizer-cache", symbolizerCache), ("unwind", sampling.unwind),
      ("allowed-hosts", allowedHosts), ("api-token-file", apiTokenFile),
      ("insecure-listen", insecureListen ? "true" : nil), ("max-query-range", maxQueryRange),
      ("query-budget", queryBudget), ("certificate", certificate),
      ("client-certificate", clientCertificate), ("client-key", clientKey),
      ("protocol", `protocol`),
    ]
  }

  func run() throws {
    StopSignal.install(hangUp: .ignore)
    let settings: AgentSettings
    let configuration: AgentConfiguration
    do {
      settings = try AgentSettings.layered(
        flags: flagValues, environment: ProcessInfo.processInfo.environment, configFile: config)
      configuration = try settings.resolve()
    } catch {
      Console.error("flamespan agent: \(error)")
      throw ExitCode.validationFailure
    }
    if printConfig {
      print(configurationText(configuration, settings))
      return
    }
    let signals = AgentStopSignals(
      stopRequested: { StopSignal.requested() }, ignoredHangUps: { StopSignal.ignoredHangUps })
    do {
      try AgentRunner.run(configuration: configuration, signals: signals)
    } catch {
      Console.error("flamespan agent: \(error)")
      throw ExitCode(error.exitCode)
    }
  }
}
