import FlamespanTestSupport
import Foundation

/// What the agent tests share: the reference OTLP receiver, and reading the agent's API and metrics.
enum AgentHarness {
  static let receiverScript = TestEnvironment.packageRoot.appendingPathComponent(
    "tools/otlp-receiver/receiver.py"
  ).path

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
    guard
      FileManager.default.fileExists(atPath: log.path)
        || FileManager.default.createFile(atPath: log.path, contents: nil)
    else { throw TestFailure("cannot create \(log.path) for the OTLP receiver's log") }
    let server = try BackgroundProcess(
      ["python3", AgentHarness.receiverScript, String(port), log.path]
        + (tls.map { ["--tls", $0.certificate, $0.key] } ?? []),
      environment: PythonOTLPDecoder.environment,
      logs: directory, label: label)
    let listening = waitUntil(seconds: 20, every: 0.2) { !server.stdout.isEmpty }
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

  func stop() { _ = server.stop(signal: SIGTERM) }
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
