import FlamespanTestSupport
import Foundation
import Testing

/// Processes an agent test runs: the agent itself, the reference OTLP receiver and the HTTP workload.
enum AgentHarness {
  /// $FLAMESPAN_BIN, else the `flamespan` built beside this test bundle (whatever --scratch-path was),
  /// else the default debug build.
  static var binary: String {
    if let path = ProcessInfo.processInfo.environment["FLAMESPAN_BIN"], !path.isEmpty {
      return path
    }
    let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
      .appendingPathComponent("flamespan").path
    if FileManager.default.isExecutableFile(atPath: beside) { return beside }
    return TestEnvironment.flamespanBinary
  }

  static let samples: Result<URL, TestFailure> = {
    do {
      return .success(
        try TestEnvironment.buildSamples(into: TestEnvironment.temporaryDirectory("agent-samples")))
    } catch {
      return .failure(TestFailure("\(error)"))
    }
  }()

  static let protoVersion = "1.44.0"
  static let pythonPath = TestEnvironment.packageRoot.appendingPathComponent(
    ".build-python/opentelemetry-proto-\(protoVersion)"
  ).path
  static let receiverScript = TestEnvironment.packageRoot.appendingPathComponent(
    "tools/otlp-receiver/receiver.py"
  ).path

  /// nil when `opentelemetry-proto==1.44.0` imports (installed with pip into .build-python if missing).
  static let pythonProblem: String? = {
    guard TestEnvironment.which("python3") != nil else { return "python3 is not installed" }
    func imports() -> Bool {
      let check = try? Run.command(
        [
          "python3", "-c",
          "import importlib.metadata as m; import opentelemetry.proto.collector.trace.v1.trace_service_pb2; "
            + "import opentelemetry.proto.collector.profiles.v1development.profiles_service_pb2; "
            + "print(m.version('opentelemetry-proto'))",
        ], environment: ["PYTHONPATH": pythonPath])
      return check?.status == 0
        && check?.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == protoVersion
    }
    if imports() { return nil }
    let pip = try? Run.command([
      "python3", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target",
      pythonPath, "opentelemetry-proto==\(protoVersion)",
    ])
    return imports()
      ? nil : "cannot install opentelemetry-proto==\(protoVersion): \(pip?.stderr ?? "")"
  }()

  /// The usual skip rule: outside CI a missing prerequisite skips with a printed reason; under CI it fails.
  static func ready(for test: String, tools: [String] = []) -> Bool {
    guard TestEnvironment.bpfAvailable(for: test) else {
      if TestEnvironment.isCI { Issue.record("\(test) needs root under CI") }
      return false
    }
    for tool in tools where !TestEnvironment.toolAvailable(tool, for: test) {
      if TestEnvironment.isCI { Issue.record("\(test) needs \(tool) under CI") }
      return false
    }
    if let pythonProblem {
      if TestEnvironment.isCI {
        Issue.record("\(test): \(pythonProblem)")
      } else {
        print("SKIPPED \(test): \(pythonProblem)")
      }
      return false
    }
    return true
  }

  /// A port nothing listens on right now.
  static func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        _ = bind(fd, $0, length)
        return getsockname(fd, $0, &length)
      }
    }
    return Int(UInt16(bigEndian: address.sin_port))
  }

  static func get(_ url: String) throws -> String {
    let result = try Run.command(["curl", "-s", "--max-time", "10", url])
    guard result.status == 0 else { throw TestFailure("GET \(url) failed: \(result.stderr)") }
    return result.stdout
  }

  /// Prometheus text → value by metric name with labels, e.g. `flamespan_samples_total`.
  static func metrics(port: Int) throws -> [String: Double] {
    var values: [String: Double] = [:]
    for line in try get("http://127.0.0.1:\(port)/metrics").split(separator: "\n")
    where !line.hasPrefix("#") {
      let parts = line.split(separator: " ")
      if parts.count == 2, let value = Double(parts[1]) { values[String(parts[0])] = value }
    }
    return values
  }

  static func waitUntil(seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
      if try condition() { return true }
      usleep(200_000)
    }
    return try condition()
  }
}

/// A background process with its output in files.
final class BackgroundProcess {
  let process = Process()
  let stdoutFile: URL
  let stderrFile: URL
  var pid: Int32 { process.processIdentifier }

  init(
    _ arguments: [String], environment: [String: String] = [:], logs directory: URL, label: String
  )
    throws
  {
    stdoutFile = directory.appendingPathComponent("\(label).out")
    stderrFile = directory.appendingPathComponent("\(label).err")
    FileManager.default.createFile(atPath: stdoutFile.path, contents: nil)
    FileManager.default.createFile(atPath: stderrFile.path, contents: nil)
    process.executableURL = URL(fileURLWithPath: arguments[0])
    process.arguments = Array(arguments.dropFirst())
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    process.standardOutput = try FileHandle(forWritingTo: stdoutFile)
    process.standardError = try FileHandle(forWritingTo: stderrFile)
    try process.run()
  }

  var stdout: String { (try? String(contentsOf: stdoutFile, encoding: .utf8)) ?? "" }
  var stderr: String { (try? String(contentsOf: stderrFile, encoding: .utf8)) ?? "" }

  /// Sends `signal` and waits up to `seconds`; returns the exit status and how long the exit took, or nil
  /// status when it had to be killed.
  func stop(signal: Int32 = SIGTERM, within seconds: Double = 10) -> (
    status: Int32?, seconds: Double
  ) {
    let began = Date()
    guard process.isRunning else { return (process.terminationStatus, 0) }
    kill(pid, signal)
    while process.isRunning && Date().timeIntervalSince(began) < seconds { usleep(20_000) }
    let took = Date().timeIntervalSince(began)
    if process.isRunning {
      kill(pid, SIGKILL)
      process.waitUntilExit()
      return (nil, took)
    }
    return (process.terminationStatus, took)
  }

  deinit { if process.isRunning { kill(pid, SIGKILL) } }
}

/// tools/otlp-receiver/receiver.py: one JSON line per request it decoded.
final class OTLPReceiver {
  let server: BackgroundProcess
  let log: URL
  let port: Int

  /// With `tls` it serves HTTPS with that PEM certificate chain and key.
  init(
    port: Int, directory: URL, label: String = "receiver",
    tls: (certificate: String, key: String)? = nil
  ) throws {
    log = directory.appendingPathComponent("\(label).jsonl")
    if !FileManager.default.fileExists(atPath: log.path) {
      FileManager.default.createFile(atPath: log.path, contents: nil)
    }
    let server = try BackgroundProcess(
      ["/usr/bin/env", "python3", AgentHarness.receiverScript, String(port), log.path]
        + (tls.map { ["--tls", $0.certificate, $0.key] } ?? []),
      environment: ["PYTHONPATH": AgentHarness.pythonPath, "PYTHONDONTWRITEBYTECODE": "1"],
      logs: directory, label: label)
    let listening = AgentHarness.waitUntil(seconds: 20) { !server.stdout.isEmpty }
    guard listening, let bound = Int(server.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    else { throw TestFailure("the OTLP receiver did not start: \(server.stderr)") }
    self.server = server
    self.port = bound
  }

  /// Every decoded request so far, in arrival order.
  var entries: [[String: Any]] {
    guard let data = FileManager.default.contents(atPath: log.path) else { return [] }
    return data.split(separator: 0x0A).compactMap {
      (try? JSONSerialization.jsonObject(with: Data($0))) as? [String: Any]
    }
  }

  func entries(path: String) -> [[String: Any]] {
    entries.filter { ($0["path"] as? String)?.hasPrefix(path) == true }
  }

  func stop() { _ = server.stop() }
}

/// The ids of BPF programs `pid` holds through program or link file descriptors, from
/// /proc/PID/fdinfo (`prog_id:`), which works whether or not bpftool can name a program's holders.
func bpfProgramIDs(heldBy pid: Int32) throws -> Set<Int> {
  let directory = "/proc/\(pid)/fdinfo"
  var ids: Set<Int> = []
  for entry in try FileManager.default.contentsOfDirectory(atPath: directory) {
    guard let text = try? String(contentsOfFile: "\(directory)/\(entry)", encoding: .utf8) else {
      continue
    }
    for line in text.split(separator: "\n") where line.hasPrefix("prog_id:") {
      if let id = Int(line.dropFirst("prog_id:".count).trimmingCharacters(in: .whitespaces)) {
        ids.insert(id)
      }
    }
  }
  return ids
}

func bpfProgramIDs() throws -> Set<Int> {
  let result = try Run.command(["bpftool", "prog", "show", "--json"])
  let programs =
    (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8))) as? [[String: Any]]
  return Set((programs ?? []).compactMap { $0["id"] as? Int })
}
