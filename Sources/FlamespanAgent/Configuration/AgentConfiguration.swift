import FlamespanModel
import FlamespanRecorder
import Foundation
import Glibc
import NIOSSL

/// Everything the agent runs with, merged from flags, then the standard OTEL_* environment variables,
/// then the config file, then defaults (the first that sets a value wins).
public struct AgentConfiguration: Sendable {
  var frequency = 19
  var exportIntervalNanos: UInt64 = 10_000_000_000
  var traceHTTP = true
  var profilesEndpoint: HTTPEndpoint?
  var tracesEndpoint: HTTPEndpoint?
  /// TLS settings of the OTLP destinations ("otlp-profiles", "otlp-traces") that name PEM files of
  /// their own; https without them verifies against the system's CA bundle.
  var tlsByDestination: [String: TLSConfiguration] = [:]
  /// OTEL_EXPORTER_OTLP_PROTOCOL (or --protocol) when it asks for grpc or http/json, which the agent
  /// does not speak: it exports http/protobuf anyway, and says so at start.
  var unsupportedProtocol: String?
  /// The only OTLP protocol the agent speaks (docs/agent.md: why not gRPC).
  static let exportedProtocol = "http/protobuf"
  var headers: [(String, String)] = []
  var resourceAttributes: [(String, String)] = []
  /// service.name for processes that do not set their own OTEL_SERVICE_NAME (else the executable name).
  var serviceName: String?
  var hostName: String?
  var gzip = true
  var pyroscopeEndpoint: HTTPEndpoint?
  var pyroscopeApplication = "flamespan.cpu"
  var pyroscopeHeaders: [(String, String)] = []
  var storeDirectory: String? = "/var/lib/flamespan"
  var retentionNanos: Int64 = 24 * 3600 * 1_000_000_000
  var storeMaximumBytes = 1 << 30
  var listen: String? = "127.0.0.1:7470"
  /// Host header values the UI and API accept besides the listen address, localhost, 127.0.0.1 and [::1]
  /// ("*": any).
  var allowedHosts: [String] = []
  /// Requests to the API and /metrics must carry `Authorization: Bearer <token>` when set.
  var apiTokenFile: String?
  var apiToken: [UInt8]?
  /// Listen beyond loopback without a token (a warning is logged).
  var insecureListen = false
  /// The widest range one API query may read, and the time it may take.
  var queryMaximumRangeNanos: Int64 = 6 * 3600 * 1_000_000_000
  var queryBudgetNanos: UInt64 = 5_000_000_000
  var queueLimits = ExportQueueLimits()
  var statusLines = true
  /// Resident bytes past which the symbolizer's caches are dropped after a window.
  var memoryBudgetBytes: UInt64? = 192 << 20
  /// Estimated bytes of parsed files the symbolizer keeps between windows (nil: bounded by count only).
  /// Sized so the agent stays under 100 MB resident on a build machine (bench/agent/RESULTS.md).
  var symbolizerCacheBytes: Int? = 24 << 20
  /// Spans stored and exported per window: those with CPU samples first, then the slowest.
  var maximumSpansPerWindow = 5000
  /// auto (stack copies unwound with the runtime plug-ins, DWARF CFI and frame pointers), dwarf or fp.
  var unwinding: UserStackUnwinding = .automatic
}

public struct ConfigurationError: Error, CustomStringConvertible {
  var source: String
  var message: String
  /// A message that starts with the flag it is about is whole; any other names its file or variable.
  public var description: String { message.hasPrefix(source) ? message : "\(source): \(message)" }
}

/// The allowed range of every number the agent takes, on the command line and in --config alike.
enum AgentLimits {
  static let exportInterval: ClosedRange<UInt64> = 100_000_000...86_400_000_000_000
  static let retention: ClosedRange<UInt64> = 60_000_000_000...(3650 * 86_400_000_000_000)
  static let retryMaximumBackoff: ClosedRange<UInt64> = 1_000_000...86_400_000_000_000
  /// The widest time range one UI/API query may cover: 1 s to the longest retention.
  static let queryMaximumRange: ClosedRange<UInt64> = 1_000_000_000...(3650 * 86_400_000_000_000)
  /// The time one UI/API query may take: 100 ms to 10 minutes.
  static let queryBudget: ClosedRange<UInt64> = 100_000_000...600_000_000_000
  static let storeMaximumBytes: ClosedRange<UInt64> = (1 << 20)...(1 << 50)
  static let queueBytes: ClosedRange<UInt64> = (1 << 16)...(1 << 40)
  /// 0 lifts the bound.
  static let memoryBudget: ClosedRange<UInt64> = 0...(1 << 40)
  static let symbolizerCache: ClosedRange<UInt64> = 0...(1 << 40)
  static let frequency = 1...10_000
  static let queueWindows = 1...100_000
  static let maximumSpans = 0...10_000_000
}

/// The raw settings, all as text, keyed by the config-file names (which are the long flag names).
public struct AgentSettings {
  static let keys = Set([
    "frequency", "export-interval", "endpoint", "profiles-endpoint", "traces-endpoint", "headers",
    "resource-attributes", "service-name", "host-name", "gzip", "pyroscope", "pyroscope-app",
    "store", "retention", "store-max-bytes", "listen", "queue-windows", "queue-bytes",
    "retry-max-backoff", "trace-http", "status-lines", "memory-budget", "max-spans",
    "symbolizer-cache", "unwind", "allowed-hosts", "api-token-file", "insecure-listen",
    "max-query-range", "query-budget", "protocol",
  ]).union(tlsKeys)

  /// The TLS files: for both OTLP signals, then for each on its own (which wins over the shared one).
  static let tlsKeys: Set<String> = Set(
    ["", "profiles-", "traces-"].flatMap { signal in
      ["certificate", "client-certificate", "client-key"].map { signal + $0 }
    })

  var values: [String: (value: String, source: String)] = [:]

  /// Lower layers never replace what a higher one set.
  mutating func fill(_ key: String, _ value: String?, source: String) {
    guard let value, values[key] == nil else { return }
    values[key] = (value, source)
  }

  /// `key = value` lines; `#` starts a comment; values may be quoted. Keys are the long flag names.
  static func parseFile(_ path: String) throws(ConfigurationError) -> [(String, String)] {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw ConfigurationError(source: path, message: "cannot read the config file")
    }
    var pairs: [(String, String)] = []
    for (number, rawLine) in String(decoding: data, as: UTF8.self).split(
      separator: "\n", omittingEmptySubsequences: false
    ).enumerated() {
      let line = rawLine.trimmingCharacters(in: .whitespaces)
      if line.isEmpty || line.hasPrefix("#") { continue }
      guard let equals = line.firstIndex(of: "=") else {
        throw ConfigurationError(source: "\(path):\(number + 1)", message: "expected key = value")
      }
      let key = line[..<equals].trimmingCharacters(in: .whitespaces)
      var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
      if value.count >= 2, value.first == "\"", value.last == "\"" {
        value = String(value.dropFirst().dropLast())
      }
      guard keys.contains(key) else {
        throw ConfigurationError(source: "\(path):\(number + 1)", message: "unknown key \"\(key)\"")
      }
      pairs.append((key, value))
    }
    return pairs
  }

  /// OTEL_EXPORTER_OTLP_HEADERS and OTEL_RESOURCE_ATTRIBUTES: `k1=v1,k2=v2`, percent-encoded values.
  static func parseList(_ text: String, source: String) throws(ConfigurationError) -> [(
    String, String
  )] {
    var pairs: [(String, String)] = []
    for item in text.split(separator: ",") {
      let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
      let key = parts[0].trimmingCharacters(in: .whitespaces)
      guard parts.count == 2, !key.isEmpty else {
        throw ConfigurationError(source: source, message: "expected key=value, got \"\(item)\"")
      }
      let raw = parts[1].trimmingCharacters(in: .whitespaces)
      pairs.append((key, raw.removingPercentEncoding ?? raw))
    }
    return pairs
  }

  public func resolve() throws(ConfigurationError) -> AgentConfiguration {
    var configuration = AgentConfiguration()
    func text(_ key: String) -> (value: String, source: String)? { values[key] }
    func endpoint(_ key: String) throws(ConfigurationError) -> HTTPEndpoint? {
      guard let (value, source) = text(key), !value.isEmpty else { return nil }
      do { return try HTTPEndpoint(parsing: value) } catch {
        throw ConfigurationError(source: source, message: error.description)
      }
    }
    /// The flag itself when it set the value, else the key as the file spells it.
    func name(_ key: String, _ source: String) -> String {
      source == "--\(key)" ? source : key
    }
    func duration(_ key: String, _ range: ClosedRange<UInt64>) throws(ConfigurationError) -> UInt64?
    {
      guard let (value, source) = text(key) else { return nil }
      do {
        return try DurationText.nanoseconds(value, option: name(key, source), in: range)
      } catch {
        throw ConfigurationError(source: source, message: error.message)
      }
    }
    func size(_ key: String, _ range: ClosedRange<UInt64>) throws(ConfigurationError) -> UInt64? {
      guard let (value, source) = text(key) else { return nil }
      do {
        return try SizeText.bytes(value, option: name(key, source), in: range)
      } catch {
        throw ConfigurationError(source: source, message: error.message)
      }
    }
    func integer(_ key: String, _ range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
      guard let (value, source) = text(key) else { return nil }
      do {
        return try CountText.count(value, option: name(key, source), in: range)
      } catch {
        throw ConfigurationError(source: source, message: error.message)
      }
    }
    func boolean(_ key: String) throws(ConfigurationError) -> Bool? {
      guard let (value, source) = text(key) else { return nil }
      switch value.lowercased() {
      case "true", "yes", "on", "1": return true
      case "false", "no", "off", "0": return false
      default: throw ConfigurationError(source: source, message: "\(key): expected true or false")
      }
    }

    if let value = try integer("frequency", AgentLimits.frequency) {
      configuration.frequency = value
    }
    if let value = try duration("export-interval", AgentLimits.exportInterval) {
      configuration.exportIntervalNanos = value
    }
    // The per-signal endpoints are used as they are; the base endpoint gets the signal's path appended.
    let base = try endpoint("endpoint")
    configuration.profilesEndpoint =
      try endpoint("profiles-endpoint") ?? base?.appendingPath("/v1development/profiles")
    configuration.tracesEndpoint =
      try endpoint("traces-endpoint") ?? base?.appendingPath("/v1/traces")
    for (destination, signal) in [("otlp-profiles", "profiles-"), ("otlp-traces", "traces-")] {
      if let tls = try tlsConfiguration(signal: signal) {
        configuration.tlsByDestination[destination] = tls
      }
    }
    if let (value, source) = text("protocol") {
      switch value {
      case AgentConfiguration.exportedProtocol: break
      case "grpc", "http/json": configuration.unsupportedProtocol = value
      default:
        throw ConfigurationError(
          source: source,
          message:
            "\(name("protocol", source)): expected \(AgentConfiguration.exportedProtocol) (grpc and http/json are accepted with a warning), got \"\(value)\""
        )
      }
    }
    if let (value, source) = text("headers") {
      configuration.headers = try Self.parseList(value, source: source)
    }
    if let (value, source) = text("resource-attributes") {
      configuration.resourceAttributes = try Self.parseList(value, source: source)
    }
    configuration.serviceName =
      text("service-name")?.value
      ?? configuration.resourceAttributes.first { $0.0 == "service.name" }?.1
    configuration.resourceAttributes.removeAll { $0.0 == "service.name" }
    configuration.hostName = text("host-name")?.value
    if let value = try boolean("gzip") { configuration.gzip = value }
    configuration.pyroscopeEndpoint = try endpoint("pyroscope")
    if let value = text("pyroscope-app")?.value { configuration.pyroscopeApplication = value }
    if let (value, _) = text("store") { configuration.storeDirectory = value.isEmpty ? nil : value }
    if let value = try duration("retention", AgentLimits.retention) {
      configuration.retentionNanos = Int64(clamping: value)
    }
    if let value = try size("store-max-bytes", AgentLimits.storeMaximumBytes) {
      configuration.storeMaximumBytes = Int(clamping: value)
    }
    if let (value, _) = text("listen") {
      configuration.listen = value.isEmpty || value == "off" ? nil : value
    }
    if let value = text("allowed-hosts")?.value {
      configuration.allowedHosts = value.split(separator: ",").map {
        $0.trimmingCharacters(in: .whitespaces)
      }.filter { !$0.isEmpty }
    }
    if let (path, source) = text("api-token-file"), !path.isEmpty {
      configuration.apiTokenFile = path
      configuration.apiToken = try Self.readToken(path, source: source)
    }
    if let value = try boolean("insecure-listen") { configuration.insecureListen = value }
    if let listen = configuration.listen, !Self.isLoopback(listen),
      configuration.apiToken == nil, !configuration.insecureListen
    {
      throw ConfigurationError(
        source: text("listen")?.source ?? "default",
        message:
          "listen: \(listen) is reachable beyond this machine's loopback, and without a token anyone who "
          + "reaches it reads every profile and span. Give a token with --api-token-file PATH (a file of "
          + "mode 0600 holding it; clients send Authorization: Bearer <token>), listen on 127.0.0.1, or "
          + "pass --insecure-listen to serve it to anyone anyway")
    }
    if let value = try duration("max-query-range", AgentLimits.queryMaximumRange) {
      configuration.queryMaximumRangeNanos = Int64(clamping: value)
    }
    if let value = try duration("query-budget", AgentLimits.queryBudget) {
      configuration.queryBudgetNanos = value
    }
    if let value = try integer("queue-windows", AgentLimits.queueWindows) {
      configuration.queueLimits.maximumWindows = value
    }
    if let value = try size("queue-bytes", AgentLimits.queueBytes) {
      configuration.queueLimits.maximumBytes = Int(clamping: value)
    }
    if let value = try duration("retry-max-backoff", AgentLimits.retryMaximumBackoff) {
      configuration.queueLimits.maximumBackoffNanos = max(
        value, configuration.queueLimits.initialBackoffNanos)
    }
    if let value = try boolean("trace-http") { configuration.traceHTTP = value }
    if let value = try boolean("status-lines") { configuration.statusLines = value }
    if let value = try integer("max-spans", AgentLimits.maximumSpans) {
      configuration.maximumSpansPerWindow = value
    }
    if let value = try size("memory-budget", AgentLimits.memoryBudget) {
      configuration.memoryBudgetBytes = value == 0 ? nil : value
    }
    if let value = try size("symbolizer-cache", AgentLimits.symbolizerCache) {
      configuration.symbolizerCacheBytes = value == 0 ? nil : Int(clamping: value)
    }
    if let (value, source) = text("unwind") {
      guard let mode = UserStackUnwinding(rawValue: value) else {
        throw ConfigurationError(
          source: source, message: "unwind: expected auto, dwarf or fp, got \"\(value)\"")
      }
      configuration.unwinding = mode
    }
    return configuration
  }

  /// The TLS settings of one OTLP signal ("profiles-" or "traces-"), each file from the signal's own
  /// key else the shared one; nil when neither names any file.
  func tlsConfiguration(signal: String) throws(ConfigurationError) -> TLSConfiguration? {
    func setting(_ name: String) -> (value: String, source: String)? {
      for key in [signal + name, name] {
        if let found = values[key], !found.value.isEmpty { return found }
      }
      return nil
    }
    let certificate = setting("certificate")
    let clientCertificate = setting("client-certificate")
    let clientKey = setting("client-key")
    let files = ExportTLSFiles(
      certificate: certificate?.value, clientCertificate: clientCertificate?.value,
      clientKey: clientKey?.value)
    guard !files.isEmpty else { return nil }
    do { return try files.configuration() } catch {
      let source =
        [certificate, clientCertificate, clientKey].compactMap { $0 }.first {
          $0.value == error.path
        }?.source ?? "certificate"
      throw ConfigurationError(source: source, message: error.description)
    }
  }

  /// True when the host of `listen` ("host:port") is a loopback address: 127.0.0.0/8 or ::1.
  static func isLoopback(_ listen: String) -> Bool {
    guard let colon = listen.lastIndex(of: ":") else { return false }
    var host = String(listen[..<colon])
    if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    var v4 = in_addr()
    if inet_pton(AF_INET, host, &v4) == 1 { return UInt32(bigEndian: v4.s_addr) >> 24 == 127 }
    var v6 = in6_addr()
    guard inet_pton(AF_INET6, host, &v6) == 1 else { return false }
    let bytes = withUnsafeBytes(of: &v6) { Array($0) }
    if bytes == [UInt8](repeating: 0, count: 15) + [1] { return true }
    // ::ffff:127.x.y.z, an IPv4 loopback address in IPv6 form.
    return bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF
      && bytes[12] == 127
  }

  /// The token in `path` (surrounding white space trimmed). A file other users may read or write is
  /// refused: the token would not be a secret.
  static func readToken(_ path: String, source: String) throws(ConfigurationError) -> [UInt8] {
    var status = stat()
    guard stat(path, &status) == 0 else {
      throw ConfigurationError(
        source: source,
        message: "api-token-file: cannot read \(path): \(String(cString: strerror(errno)))")
    }
    let mode = status.st_mode & 0o777
    guard mode & 0o006 == 0 else {
      throw ConfigurationError(
        source: source,
        message:
          "api-token-file: \(path) is open to every user (mode \(String(mode, radix: 8))), so its token "
          + "is no secret; make it private with chmod 600 \(path)")
    }
    guard let data = FileManager.default.contents(atPath: path) else {
      throw ConfigurationError(source: source, message: "api-token-file: cannot read \(path)")
    }
    let token = String(decoding: data, as: UTF8.self).trimmingCharacters(
      in: .whitespacesAndNewlines)
    guard !token.isEmpty, !token.contains(where: { $0.isWhitespace }) else {
      throw ConfigurationError(
        source: source,
        message:
          "api-token-file: \(path) must hold one token without spaces, and holds \(token.isEmpty ? "none" : "spaces")"
      )
    }
    return Array(token.utf8)
  }
}
