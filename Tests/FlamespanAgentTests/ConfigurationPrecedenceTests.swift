import FlamespanTestSupport
import Foundation
import Testing

@testable import FlamespanAgent

/// The typed configuration and its layers, on real config files: flags over OTEL_* variables over the
/// file over AgentConfiguration's defaults, with where each value came from.
@Suite struct ConfigurationPrecedenceTests {
  static func configFile(_ text: String) throws -> String {
    let directory = try TestEnvironment.temporaryDirectory("agent-config")
    let path = directory.appendingPathComponent("agent.conf").path
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }

  @Test func flagsBeatVariablesWhichBeatTheFileWhichBeatsDefaults() throws {
    let file = try Self.configFile(
      """
      # every layer sets frequency; only the file sets retention
      frequency = 7
      endpoint = http://file:4318
      service-name = "from-file"
      retention = 2h
      """)
    let settings = try AgentSettings.layered(
      flags: [("frequency", "50"), ("endpoint", nil), ("service-name", nil)],
      environment: [
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4318", "OTEL_SERVICE_NAME": "",
        "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=abc%20def",
      ], configFile: file)
    let configuration = try settings.resolve()
    #expect(configuration.frequency == 50)
    #expect(settings.values["frequency"]?.source == "--frequency")
    #expect(configuration.tracesEndpoint?.description == "http://env:4318/v1/traces")
    #expect(settings.values["endpoint"]?.source == "OTEL_EXPORTER_OTLP_ENDPOINT")
    // An empty variable is unset, so the file's value shows through.
    #expect(configuration.serviceName == "from-file")
    #expect(settings.values["service-name"]?.source == file)
    #expect(configuration.retentionNanos == 2 * 3600 * 1_000_000_000)
    #expect(configuration.headers.map { "\($0.0)=\($0.1)" } == ["x-api-key=abc def"])
    // Nothing set the queue: AgentConfiguration's defaults, which the help quotes.
    #expect(
      configuration.queueLimits.maximumWindows == AgentConfiguration().queueLimits.maximumWindows)
    #expect(settings.values["queue-windows"] == nil)
    #expect(AgentConfiguration.defaultText("queue-windows") == "60")
    #expect(AgentConfiguration.defaultText("retention") == "24h")
    #expect(AgentConfiguration.defaultText("queue-bytes") == "64MiB")
    #expect(AgentConfiguration.defaultText("export-interval") == "10s")
  }

  @Test func aPerSignalEndpointBeatsTheBaseWhateverItsLayer() throws {
    let settings = try AgentSettings.layered(
      flags: [("endpoint", "http://flag:4318")],
      environment: ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://traces.example/custom"],
      configFile: nil)
    let configuration = try settings.resolve()
    #expect(configuration.tracesEndpoint?.description == "https://traces.example:443/custom")
    #expect(
      configuration.profilesEndpoint?.description == "http://flag:4318/v1development/profiles")
  }

  @Test func badFilesAndValuesSayWhereAndWhat() throws {
    let unknown = try Self.configFile("frequency = 10\nfrequncy = 11\n")
    #expect {
      _ = try AgentSettings.layered(flags: [], environment: [:], configFile: unknown)
    } throws: { error in
      "\(error)" == "\(unknown):2: unknown key \"frequncy\""
    }
    let missing = "/nonexistent/flamespan.conf"
    #expect(throws: ConfigurationError.self) {
      _ = try AgentSettings.layered(flags: [], environment: [:], configFile: missing)
    }
    let badURL = try AgentSettings.layered(
      flags: [], environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": "grpc://collector:4317"],
      configFile: nil)
    #expect {
      _ = try badURL.resolve()
    } throws: { error in
      "\(error)".hasPrefix("OTEL_EXPORTER_OTLP_ENDPOINT: grpc://collector:4317")
        && "\(error)".contains("expected http[s]://")
    }
  }

  @Test func grpcIsAcceptedWithAWarningAndOtherProtocolsAreRefused() throws {
    let grpc = try AgentSettings.layered(
      flags: [], environment: ["OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"], configFile: nil)
    #expect(try grpc.resolve().unsupportedProtocol == "grpc")
    let plain = try AgentSettings.layered(
      flags: [], environment: ["OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"], configFile: nil)
    #expect(try plain.resolve().unsupportedProtocol == nil)
    let bogus = try AgentSettings.layered(
      flags: [("protocol", "carrier-pigeon")], environment: [:], configFile: nil)
    #expect {
      _ = try bogus.resolve()
    } throws: { error in
      "\(error)".hasPrefix("--protocol: expected http/protobuf")
    }
  }

  @Test func missingTLSFilesAreRefusedAtStart() throws {
    let missing = try AgentSettings.layered(
      flags: [],
      environment: ["OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": "/nonexistent/ca.pem"],
      configFile: nil)
    #expect {
      _ = try missing.resolve()
    } throws: { error in
      "\(error)".hasPrefix("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE: /nonexistent/ca.pem")
    }
    let keyless = try AgentSettings.layered(
      flags: [("client-certificate", "/nonexistent/client.pem")], environment: [:],
      configFile: nil)
    #expect {
      _ = try keyless.resolve()
    } throws: { error in
      "\(error)".contains("set the client key too")
    }
  }

  @Test(.requires(.tool("openssl"))) func eachSignalsOwnTLSFileWinsOverTheSharedOne() throws {
    let authority = try TestCertificates.make(label: "config-tls")
    let shared = try AgentSettings.layered(
      flags: [("certificate", authority.caCertificate)],
      environment: ["OTEL_EXPORTER_OTLP_PROFILES_CERTIFICATE": "/nonexistent/profiles-ca.pem"],
      configFile: nil)
    // The profiles signal names its own file, which wins over the shared flag, and is missing.
    #expect {
      _ = try shared.resolve()
    } throws: { error in
      "\(error)".hasPrefix("OTEL_EXPORTER_OTLP_PROFILES_CERTIFICATE: /nonexistent/profiles-ca.pem")
    }
    let good = try AgentSettings.layered(
      flags: [("certificate", authority.caCertificate)], environment: [:], configFile: nil)
    let configuration = try good.resolve()
    #expect(Set(configuration.tlsByDestination.keys) == ["otlp-profiles", "otlp-traces"])
  }
}
