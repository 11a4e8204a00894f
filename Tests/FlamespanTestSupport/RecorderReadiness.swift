import Foundation

/// `flamespan record` prints "… Ctrl-C to stop." once its programs are attached, even with `-q`. Loading
/// them (the verifier) can take seconds on a loaded machine, and a workload started before then is not
/// seen: tests wait for that line rather than for a fixed time.
public enum RecorderReadiness {
  public static let line = "Ctrl-C to stop"

  /// Sends the recorder's stderr to `file` (created empty), where `wait` looks for the line.
  public static func captureStderr(of recorder: Process, into file: URL) throws {
    _ = FileManager.default.createFile(atPath: file.path, contents: nil)
    recorder.standardError = try FileHandle(forWritingTo: file)
  }

  /// Waits until the recorder's stderr, written to `stderrFile`, says it is sampling. Returns false if the
  /// recorder exits or `seconds` pass first.
  public static func wait(for recorder: Process, stderrFile: URL, seconds: TimeInterval = 60)
    -> Bool
  {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
      if text(of: stderrFile).contains(line) { return true }
      if !recorder.isRunning { return text(of: stderrFile).contains(line) }
      usleep(20_000)
    }
    return false
  }

  public static func text(of file: URL) -> String {
    (try? String(contentsOf: file, encoding: .utf8)) ?? ""
  }
}
