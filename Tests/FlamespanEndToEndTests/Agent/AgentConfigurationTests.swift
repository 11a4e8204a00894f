import FlamespanTestSupport
import Foundation
import Testing

/// How `flamespan agent` merges its settings: flags over OTEL_* variables over the config file over
/// defaults. Needs no privileges: `--print-config` shows the result, with the source of each value.
struct AgentConfigurationTests {
  func printConfig(_ arguments: [String], environment: [String: String] = [:]) throws -> Run.Result
  {
    // Unset inherited OTEL_* variables so only the test's own apply.
    var clean: [String: String] = [:]
    for key in ProcessInfo.processInfo.environment.keys where key.hasPrefix("OTEL_") {
      clean[key] = ""
    }
    return try Run.command(
      [TestEnvironment.flamespanBinary, "agent", "--print-config"] + arguments,
      environment: clean.merging(environment) { $1 })
  }

  func settings(_ output: String) -> [String: (value: String, source: String)] {
    var result: [String: (String, String)] = [:]
    for line in output.split(separator: "\n") {
      let parts = line.components(separatedBy: " = ")
      guard parts.count == 2 else { continue }
      let valueAndSource = parts[1].components(separatedBy: "  # ")
      result[parts[0]] = (valueAndSource[0], valueAndSource.last ?? "")
    }
    return result
  }

  @Test func flagsBeatEnvironmentWhichBeatsTheFileWhichBeatsDefaults() throws {
    let directory = try TestEnvironment.temporaryDirectory("agent-config")
    let file = directory.appendingPathComponent("agent.conf")
    try """
    # comments and blank lines are fine

    endpoint = http://file-host:4318
    frequency = 50
    export-interval = 3s
    headers = "x-api-key=from-file"
    queue-windows = 7
    """.write(to: file, atomically: true, encoding: .utf8)
    let result = try printConfig(
      ["--config", file.path, "--frequency", "29"],
      environment: [
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://env-host:4318/",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces-host:9999/custom/path",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,team=two%20words",
        "OTEL_SERVICE_NAME": "fallback-service",
      ])
    #expect(result.status == 0, "\(result.stderr)")
    let values = settings(result.stdout)
    #expect(values["frequency"]?.value == "29" && values["frequency"]?.source == "--frequency")
    #expect(values["export-interval"]?.value == "3.0s")
    #expect(values["export-interval"]?.source == file.path)
    #expect(values["profiles-endpoint"]?.value == "http://env-host:4318/v1development/profiles")
    #expect(
      values["traces-endpoint"]?.value == "http://traces-host:9999/custom/path",
      "signal URLs are used as they are")
    #expect(values["resource-attributes"]?.value == "deployment.environment=prod,team=two words")
    #expect(values["service-name"]?.value == "fallback-service")
    #expect(values["headers"]?.value == "x-api-key=***", "header values never printed")
    #expect(values["queue-windows"]?.value == "7")
    #expect(values["listen"]?.value == "127.0.0.1:7470" && values["listen"]?.source == "default")
  }

  @Test func symbolizerCacheHasAByteBoundByDefaultAndZeroLiftsIt() throws {
    let defaults = settings(try printConfig([]).stdout)
    #expect(defaults["symbolizer-cache"]?.value == String(24 << 20))
    #expect(defaults["symbolizer-cache"]?.source == "default")
    let set = settings(try printConfig(["--symbolizer-cache", "1048576"]).stdout)
    #expect(set["symbolizer-cache"]?.value == "1048576")
    #expect(set["symbolizer-cache"]?.source == "--symbolizer-cache")
    #expect(
      settings(try printConfig(["--symbolizer-cache", "0"]).stdout)["symbolizer-cache"]?.value
        == "0")
    #expect(try printConfig(["--symbolizer-cache", "-1"]).status != 0)
  }

  @Test func badSettingsAreRefusedWithWhereAndWhy() throws {
    let directory = try TestEnvironment.temporaryDirectory("agent-config-bad")
    let file = directory.appendingPathComponent("bad.conf")
    try "frequency = 19\nexport_interval = 5s\n".write(to: file, atomically: true, encoding: .utf8)
    let unknownKey = try printConfig(["--config", file.path])
    #expect(unknownKey.status == 64)
    #expect(unknownKey.stderr.contains("\(file.path):2: unknown key \"export_interval\""))

    let badDuration = try printConfig(["--export-interval", "soon"])
    #expect(
      badDuration.status == 64
        && badDuration.stderr.contains("--export-interval must be a duration between 100ms and 1d"),
      "\(badDuration.stderr)")
    let tooShort = try printConfig(["--export-interval", "10ms"])
    #expect(
      tooShort.status == 64
        && tooShort.stderr.contains("--export-interval must be between 100ms and 1d (got '10ms')"))
    let scheme = try printConfig(
      [], environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": "grpc://collector:4317"])
    #expect(scheme.status == 64 && scheme.stderr.contains("OTEL_EXPORTER_OTLP_ENDPOINT"))
    #expect(scheme.stderr.contains("expected http[s]://host[:port][/path]"), "\(scheme.stderr)")
    let https = try printConfig(
      [], environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector"])
    #expect(https.status == 0, "\(https.stderr)")
    #expect(
      https.stdout.contains("profiles-endpoint = https://collector:443/v1development/profiles"))
    let missingCA = try printConfig(
      [], environment: ["OTEL_EXPORTER_OTLP_CERTIFICATE": "/nonexistent/ca.pem"])
    #expect(
      missingCA.status == 64
        && missingCA.stderr.contains(
          "OTEL_EXPORTER_OTLP_CERTIFICATE: /nonexistent/ca.pem cannot be read"),
      "\(missingCA.stderr)")
    let badList = try printConfig([], environment: ["OTEL_EXPORTER_OTLP_HEADERS": "novalue"])
    #expect(badList.status == 64 && badList.stderr.contains("expected key=value"))
    let missing = try printConfig([
      "--config", directory.appendingPathComponent("absent.conf").path,
    ])
    #expect(missing.status == 64 && missing.stderr.contains("cannot read the config file"))
  }

  /// Beyond loopback the UI needs a token (or an explicit --insecure-listen); the token file must be
  /// private; the query bounds and allowed hosts are settings like the others.
  @Test func listeningBeyondLoopbackNeedsAPrivateTokenOrAnExplicitOverride() throws {
    let directory = try TestEnvironment.temporaryDirectory("agent-config-listen")
    let open = try printConfig(["--listen", "0.0.0.0:7470"])
    #expect(open.status == 64)
    #expect(
      open.stderr.contains("--listen: listen: 0.0.0.0:7470 is reachable beyond"), "\(open.stderr)")
    #expect(
      open.stderr.contains("--api-token-file PATH") && open.stderr.contains("--insecure-listen"))
    #expect(try printConfig(["--listen", "[::]:7470"]).status == 64)
    for loopback in ["127.0.0.1:0", "127.1.2.3:7470", "[::1]:7470"] {
      #expect(try printConfig(["--listen", loopback]).status == 0, "\(loopback)")
    }
    let insecure = try printConfig(["--listen", "0.0.0.0:7470", "--insecure-listen"])
    #expect(insecure.status == 0, "\(insecure.stderr)")
    #expect(settings(insecure.stdout)["insecure-listen"]?.value == "true")

    let token = directory.appendingPathComponent("token")
    try "abc123\n".write(to: token, atomically: true, encoding: .utf8)
    chmod(token.path, 0o644)
    let readable = try printConfig(["--api-token-file", token.path])
    #expect(readable.status == 64)
    #expect(readable.stderr.contains("open to every user (mode 644)"), "\(readable.stderr)")
    #expect(readable.stderr.contains("chmod 600 \(token.path)"))
    chmod(token.path, 0o600)
    let file = directory.appendingPathComponent("agent.conf")
    try """
    listen = 0.0.0.0:7470
    api-token-file = \(token.path)
    allowed-hosts = flamespan.internal, 10.0.0.5:7470
    max-query-range = 2h
    query-budget = 3s
    """.write(to: file, atomically: true, encoding: .utf8)
    let guarded = try printConfig(["--config", file.path])
    #expect(guarded.status == 0, "\(guarded.stderr)")
    let values = settings(guarded.stdout)
    #expect(values["api-token-file"]?.value == token.path, "the path is shown, never the token")
    #expect(!guarded.stdout.contains("abc123"))
    #expect(values["allowed-hosts"]?.value == "flamespan.internal,10.0.0.5:7470")
    #expect(values["max-query-range"]?.value == "7200.0s")
    #expect(values["query-budget"]?.value == "3.0s")
    let defaults = settings(try printConfig([]).stdout)
    #expect(defaults["max-query-range"]?.value == "21600.0s")
    #expect(defaults["query-budget"]?.value == "5.0s")
    #expect(try printConfig(["--query-budget", "10ms"]).status == 64)
  }
}
