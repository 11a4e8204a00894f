import Foundation

extension AgentSettings {
  /// The OTEL_* variables the agent reads, by the setting each fills.
  static let environmentVariables: [(key: String, variable: String)] = [
    ("endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT"),
    ("profiles-endpoint", "OTEL_EXPORTER_OTLP_PROFILES_ENDPOINT"),
    ("traces-endpoint", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
    ("headers", "OTEL_EXPORTER_OTLP_HEADERS"),
    ("resource-attributes", "OTEL_RESOURCE_ATTRIBUTES"),
    ("service-name", "OTEL_SERVICE_NAME"),
    ("protocol", "OTEL_EXPORTER_OTLP_PROTOCOL"),
    ("certificate", "OTEL_EXPORTER_OTLP_CERTIFICATE"),
    ("client-certificate", "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"),
    ("client-key", "OTEL_EXPORTER_OTLP_CLIENT_KEY"),
    ("profiles-certificate", "OTEL_EXPORTER_OTLP_PROFILES_CERTIFICATE"),
    ("profiles-client-certificate", "OTEL_EXPORTER_OTLP_PROFILES_CLIENT_CERTIFICATE"),
    ("profiles-client-key", "OTEL_EXPORTER_OTLP_PROFILES_CLIENT_KEY"),
    ("traces-certificate", "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"),
    ("traces-client-certificate", "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE"),
    ("traces-client-key", "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY"),
  ]

  /// The settings in their order of precedence: flags (keyed by their long names, nil when not given),
  /// then the OTEL_* variables (empty ones count as unset), then the config file; what none sets keeps
  /// AgentConfiguration's default.
  public static func layered(
    flags: [(key: String, value: String?)], environment: [String: String], configFile: String?
  ) throws(ConfigurationError) -> AgentSettings {
    var settings = AgentSettings()
    for (key, value) in flags { settings.fill(key, value, source: "--\(key)") }
    for (key, variable) in environmentVariables {
      settings.fill(key, environment[variable].flatMap { $0.isEmpty ? nil : $0 }, source: variable)
    }
    if let configFile {
      for (key, value) in try parseFile(configFile) {
        settings.fill(key, value, source: configFile)
      }
    }
    return settings
  }
}

/// One `key = value  # source` line per setting, in the config file's syntax, header values masked
/// (they usually carry credentials).
public func configurationText(_ configuration: AgentConfiguration, _ settings: AgentSettings)
  -> String
{
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
    ("protocol", configuration.unsupportedProtocol ?? AgentConfiguration.exportedProtocol),
    ("certificate", settings.values["certificate"]?.value ?? ""),
    ("client-certificate", settings.values["client-certificate"]?.value ?? ""),
    ("client-key", settings.values["client-key"]?.value ?? ""),
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

extension AgentConfiguration {
  /// The default of a setting as a person would type it (10s, 64MiB), for the flags' help; read from
  /// AgentConfiguration's own initial values, so each default is written once.
  public static func defaultText(_ key: String) -> String {
    let defaults = AgentConfiguration()
    func duration(_ nanos: UInt64) -> String {
      for (unit, size) in [("h", 3600), ("m", 60)] as [(String, UInt64)]
      where nanos % (size * 1_000_000_000) == 0 {
        return "\(nanos / (size * 1_000_000_000))\(unit)"
      }
      return nanos % 1_000_000_000 == 0
        ? "\(nanos / 1_000_000_000)s" : "\(nanos / 1_000_000)ms"
    }
    func size(_ bytes: UInt64) -> String {
      for (unit, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)]
      where bytes != 0 && bytes % (1 << UInt64(shift)) == 0 {
        return "\(bytes >> UInt64(shift))\(unit)"
      }
      return String(bytes)
    }
    switch key {
    case "frequency": return String(defaults.frequency)
    case "export-interval": return duration(defaults.exportIntervalNanos)
    case "gzip": return String(defaults.gzip)
    case "protocol": return exportedProtocol
    case "pyroscope-app": return defaults.pyroscopeApplication
    case "store": return defaults.storeDirectory ?? ""
    case "retention": return duration(UInt64(defaults.retentionNanos))
    case "store-max-bytes": return size(UInt64(defaults.storeMaximumBytes))
    case "listen": return defaults.listen ?? "off"
    case "max-query-range": return duration(UInt64(defaults.queryMaximumRangeNanos))
    case "query-budget": return duration(defaults.queryBudgetNanos)
    case "queue-windows": return String(defaults.queueLimits.maximumWindows)
    case "queue-bytes": return size(UInt64(defaults.queueLimits.maximumBytes))
    case "retry-max-backoff": return duration(defaults.queueLimits.maximumBackoffNanos)
    case "trace-http": return String(defaults.traceHTTP)
    case "status-lines": return String(defaults.statusLines)
    case "memory-budget": return size(defaults.memoryBudgetBytes ?? 0)
    case "symbolizer-cache": return size(UInt64(defaults.symbolizerCacheBytes ?? 0))
    case "max-spans": return String(defaults.maximumSpansPerWindow)
    case "unwind": return defaults.unwinding.rawValue
    default: return ""
    }
  }
}
