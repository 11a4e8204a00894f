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

  /// Starts `flamespan record` with `arguments` (after "record"), its stderr in `stderrFile`, and waits
  /// for its readiness line. Returns the process, or throws with what it printed when it never got ready.
  public static func start(_ arguments: [String], stderrFile: URL, seconds: TimeInterval = 60)
    throws -> Process
  {
    let recorder = Process()
    recorder.executableURL = URL(fileURLWithPath: TestEnvironment.flamespanBinary)
    recorder.arguments = ["record"] + arguments
    recorder.standardOutput = FileHandle.nullDevice
    try captureStderr(of: recorder, into: stderrFile)
    try recorder.run()
    guard wait(for: recorder, stderrFile: stderrFile, seconds: seconds) else {
      if recorder.isRunning { kill(recorder.processIdentifier, SIGKILL) }
      recorder.waitUntilExit()
      throw TestFailure("flamespan record never started: \(text(of: stderrFile))")
    }
    return recorder
  }

  /// Waits up to `seconds` for `process` to exit; false if it still runs.
  public static func waitForExit(of process: Process, seconds: TimeInterval) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while process.isRunning && Date() < deadline { usleep(10_000) }
    if process.isRunning { return false }
    process.waitUntilExit()
    return true
  }

  /// True while `pid` runs: neither gone nor a zombie waiting to be reaped.
  public static func isRunning(pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
      let close = stat.lastIndex(of: ")")
    else { return false }
    let state = stat[stat.index(after: close)...].split(separator: " ").first
    return state != "Z" && state != "X"
  }

  /// Waits up to `seconds` for `pid` to stop running; the seconds it took, or nil if it still runs.
  public static func waitUntilGone(pid: Int32, seconds: TimeInterval) -> TimeInterval? {
    let start = Date()
    while isRunning(pid: pid) {
      if Date().timeIntervalSince(start) >= seconds { return nil }
      usleep(5_000)
    }
    return Date().timeIntervalSince(start)
  }
}
