import FlamespanTestSupport
import Foundation
import Testing

/// Every value that used to trap (SIGILL in `UInt64(value * scale)`) is now refused at start, by the real
/// binary, with exit status 64 (ArgumentParser's validation failure, EX_USAGE) and a message that names
/// the option and its range. No BPF is loaded: the checks run first.
@Suite struct NumberOptionTests {
  struct Case: Sendable, CustomStringConvertible {
    var arguments: [String]
    var message: String
    var description: String { arguments.joined(separator: " ") }
  }

  static let commandLine: [Case] = [
    Case(
      arguments: ["record", "-d", "1e300", "-o", "/tmp/flamespan-never.folded"],
      message: "--duration must be between 1ms and 365d (got '1e300')"),
    Case(
      arguments: ["record", "--duration=-5s", "-o", "/tmp/flamespan-never.folded"],
      message: "--duration must be between 1ms and 365d (got '-5s')"),
    Case(
      arguments: ["record", "-d", "nan", "-o", "/tmp/flamespan-never.folded"],
      message: "--duration must be a duration between 1ms and 365d"),
    Case(
      arguments: ["record", "-d", "inf", "-o", "/tmp/flamespan-never.folded"],
      message: "--duration must be a duration between 1ms and 365d"),
    Case(
      arguments: ["agent", "--print-config", "--retention", "9999999h"],
      message: "--retention must be between 1m and 3650d (got '9999999h')"),
    Case(
      arguments: ["agent", "--print-config", "--export-interval", "99999999999999999999"],
      message: "--export-interval must be between 100ms and 1d (got '99999999999999999999')"),
    Case(
      arguments: ["agent", "--print-config", "--retry-max-backoff", "1e300"],
      message: "--retry-max-backoff must be between 1ms and 1d (got '1e300')"),
    Case(
      arguments: ["agent", "--print-config", "--queue-bytes", "99999999999999999999"],
      message: "--queue-bytes must be between 64KiB and 1TiB"),
    Case(
      arguments: ["agent", "--print-config", "--store-max-bytes=-1"],
      message: "--store-max-bytes must be between 1MiB and 1024TiB (got '-1')"),
    Case(
      arguments: ["agent", "--print-config", "--queue-windows", "99999999999999999999"],
      message: "--queue-windows must be between 1 and 100000"),
    Case(
      arguments: ["agent", "--print-config", "--max-spans", "1e3"],
      message: "--max-spans must be a whole number between 0 and 10000000 (got '1e3')"),
  ]

  @Test(arguments: commandLine)
  func outOfRangeFlagIsRefusedByName(_ test: Case) throws {
    let result = try Run.command([TestEnvironment.flamespanBinary] + test.arguments)
    #expect(result.status == 64, "status \(result.status): \(result.stderr)")
    #expect(result.stderr.contains(test.message), "\(result.stderr)")
    #expect(!result.stderr.contains("Fatal error"), "\(result.stderr)")
  }

  /// The same values in the agent's --config file: the file and the key are named, so a systemd unit's
  /// journal says what to fix instead of a Swift backtrace per restart.
  @Test(arguments: [
    ("retention = 9999999h", "retention must be between 1m and 3650d (got '9999999h')"),
    (
      "export-interval = 99999999999999999999",
      "export-interval must be between 100ms and 1d (got '99999999999999999999')"
    ),
    ("retry-max-backoff = 1e300", "retry-max-backoff must be between 1ms and 1d (got '1e300')"),
    ("memory-budget = 5PiB", "memory-budget must be a size between 0 and 1TiB"),
    ("frequency = 0", "frequency must be between 1 and 10000 (got '0')"),
  ])
  func outOfRangeConfigValueIsRefusedWithFileAndKey(line: String, message: String) throws {
    let directory = try TestEnvironment.temporaryDirectory("number-config")
    defer { try? FileManager.default.removeItem(at: directory) }
    let file = directory.appendingPathComponent("agent.conf")
    try (line + "\n").write(to: file, atomically: true, encoding: .utf8)
    let result = try Run.command([
      TestEnvironment.flamespanBinary, "agent", "--print-config", "--config", file.path,
    ])
    #expect(result.status == 64, "status \(result.status): \(result.stderr)")
    #expect(result.stderr.contains("\(file.path): \(message)"), "\(result.stderr)")
  }

  /// Values in range, with units, are taken and shown back.
  @Test func unitsAreTakenWithinRange() throws {
    let result = try Run.command([
      TestEnvironment.flamespanBinary, "agent", "--print-config", "--retention", "7d",
      "--queue-bytes", "16MiB", "--export-interval", "1.5s",
    ])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(result.stdout.contains("retention = 604800.0s"), "\(result.stdout)")
    #expect(result.stdout.contains("queue-bytes = 16777216"), "\(result.stdout)")
    #expect(result.stdout.contains("export-interval = 1.5s"), "\(result.stdout)")
  }
}
