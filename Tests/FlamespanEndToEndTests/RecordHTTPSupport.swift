import FlamespanTestSupport
import Foundation
import Glibc

/// `flamespan record --pid PID` in the background for a fixed time, with its outputs in a directory.
final class Recording {
  let process: Process
  let directory: URL
  var spansPath: URL { directory.appendingPathComponent("spans.json") }
  var pprofPath: URL { directory.appendingPathComponent("profile.pb.gz") }
  private let stderrPath: URL

  /// Returns once the programs are attached: traffic sent before then is not seen.
  init(pid: Int32, seconds: Int, frequency: Int = 499, extra: [String] = []) throws {
    directory = try TestEnvironment.temporaryDirectory("l7record")
    stderrPath = directory.appendingPathComponent("stderr.txt")
    let spansPath = directory.appendingPathComponent("spans.json")
    let pprofPath = directory.appendingPathComponent("profile.pb.gz")
    process = try RecorderReadiness.start(
      [
        "-q", "--pid", String(pid), "-d", String(seconds), "-F", String(frequency),
        "--spans-output", spansPath.path, "-o", pprofPath.path,
      ] + extra, stderrFile: stderrPath)
  }

  /// Waits for the recording to end (bounded) and returns its status and stderr.
  func finish(timeout: TimeInterval = 120) -> (status: Int32, stderr: String) {
    if !RecorderReadiness.waitForExit(of: process, seconds: timeout) {
      kill(process.processIdentifier, SIGKILL)
      process.waitUntilExit()
    }
    return (process.terminationStatus, RecorderReadiness.text(of: stderrPath))
  }
}

/// The spans of an OTLP/JSON document, flattened.
struct ExportedSpan {
  var traceID: String
  var spanID: String
  var parentSpanID: String?
  var name: String
  var kind: Int
  var start: UInt64
  var end: UInt64
  var attributes: [String: String]
  var errorStatus: Bool

  static func read(_ url: URL) throws -> [ExportedSpan] {
    let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
    guard let document = object as? [String: Any],
      let resources = document["resourceSpans"] as? [[String: Any]]
    else { throw TestFailure("not an ExportTraceServiceRequest: \(url.path)") }
    var spans: [ExportedSpan] = []
    for resource in resources {
      for scope in resource["scopeSpans"] as? [[String: Any]] ?? [] {
        for span in scope["spans"] as? [[String: Any]] ?? [] {
          var attributes: [String: String] = [:]
          for attribute in span["attributes"] as? [[String: Any]] ?? [] {
            let value = attribute["value"] as? [String: Any]
            attributes[attribute["key"] as? String ?? ""] =
              (value?["stringValue"] as? String) ?? (value?["intValue"] as? String)
          }
          spans.append(
            ExportedSpan(
              traceID: span["traceId"] as? String ?? "", spanID: span["spanId"] as? String ?? "",
              parentSpanID: span["parentSpanId"] as? String, name: span["name"] as? String ?? "",
              kind: span["kind"] as? Int ?? 0,
              start: UInt64(span["startTimeUnixNano"] as? String ?? "") ?? 0,
              end: UInt64(span["endTimeUnixNano"] as? String ?? "") ?? 0, attributes: attributes,
              errorStatus: (span["status"] as? [String: Any])?["code"] as? Int == 2))
        }
      }
    }
    return spans
  }
}
