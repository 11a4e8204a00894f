import FlamespanProcess
import FlamespanTestSupport
import Foundation
import Testing

/// `record -- CMD` and the signals that end a session: each one reaches the command's process group, the
/// outputs are still written, and record exits with the command's status (128 + N for signal N), as
/// `time` does. `--pid` processes are never signalled. Real BPF, real binary; each test waits for the
/// readiness line, never a fixed time.
@Suite(.serialized, .requires(.bpf)) struct RecordSignalTests {
  struct Session {
    var recorder: Process
    var command: Int32
    var directory: URL
    var stderrFile: URL
    var outputs: [URL]

    var stderr: String { RecorderReadiness.text(of: stderrFile) }
  }

  /// Starts `record -q -o a.folded -o a.pb.gz -- command…` and finds the command's pid.
  func start(_ label: String, command: [String]) throws -> Session {
    let directory = try TestEnvironment.temporaryDirectory(label)
    let outputs = ["a.folded", "a.pb.gz"].map { directory.appendingPathComponent($0) }
    let stderrFile = directory.appendingPathComponent("stderr.txt")
    let recorder = try RecorderReadiness.start(
      ["-q", "-F", "49"] + outputs.flatMap { ["-o", $0.path] } + ["--"] + command,
      stderrFile: stderrFile)
    let child = try #require(
      ProcessInspector.descendants(of: [recorder.processIdentifier]).first,
      "no command under record: \(RecorderReadiness.text(of: stderrFile))")
    return Session(
      recorder: recorder, command: child, directory: directory, stderrFile: stderrFile,
      outputs: outputs)
  }

  func expectOutputsWritten(_ session: Session) {
    for output in session.outputs {
      #expect(
        FileManager.default.fileExists(atPath: output.path),
        "\(output.lastPathComponent) not written: \(session.stderr)")
    }
    let pprofSize =
      (try? FileManager.default.attributesOfItem(atPath: session.outputs[1].path)[.size] as? Int)
      ?? 0
    #expect(pprofSize > 0, "empty pprof: \(session.stderr)")
  }

  @Test(arguments: [(SIGTERM, Int32(143)), (SIGHUP, Int32(129)), (SIGINT, Int32(130))])
  func signalReachesTheCommandAndOutputsAreWritten(signal: Int32, status: Int32) throws {
    let session = try start("signal-\(signal)", command: ["sleep", "30"])
    // Its own process group, so a terminal's Ctrl-C reaches it once, through us.
    #expect(getpgid(session.command) == session.command)
    let sent = Date()
    kill(session.recorder.processIdentifier, signal)
    let gone = RecorderReadiness.waitUntilGone(pid: session.command, seconds: 1)
    #expect(gone != nil, "sleep still runs 1 s after signal \(signal)")
    #expect(RecorderReadiness.waitForExit(of: session.recorder, seconds: 30))
    print(
      "signal \(signal): command gone after \(String(format: "%.3f", gone ?? -1)) s, record exited after \(String(format: "%.3f", Date().timeIntervalSince(sent))) s with \(session.recorder.terminationStatus)"
    )
    #expect(session.recorder.terminationStatus == status, "\(session.stderr)")
    #expect(session.stderr.contains("The command exited with status \(status)."))
    expectOutputsWritten(session)
  }

  /// Waits until the shell of `session` has run its `trap` for `signal`: record says it is ready once
  /// its programs are attached, which on a loaded machine can come before the shell reached its first
  /// line, and a signal sent then ends the shell by the default action.
  func waitForTrap(of signal: Int32, in session: Session) {
    let trapped = waitUntil(seconds: 10) {
      guard
        let status = try? String(contentsOfFile: "/proc/\(session.command)/status", encoding: .utf8)
      else { return false }
      let bit = UInt64(1) << UInt64(signal - 1)
      return status.split(separator: "\n").contains { line in
        let fields = line.split(separator: "\t")
        guard fields.count == 2, fields[0] == "SigIgn:" || fields[0] == "SigCgt:",
          let mask = UInt64(fields[1], radix: 16)
        else { return false }
        return mask & bit != 0
      }
    }
    #expect(trapped, "the command never trapped signal \(signal)")
  }

  /// A command that handles SIGINT and exits 3: record exits 3.
  @Test func theCommandsOwnExitStatusBecomesRecords() throws {
    let session = try start(
      "trap-exit", command: ["/bin/sh", "-c", "trap 'exit 3' INT; while :; do sleep 0.05; done"])
    waitForTrap(of: SIGINT, in: session)
    kill(session.recorder.processIdentifier, SIGINT)
    #expect(RecorderReadiness.waitForExit(of: session.recorder, seconds: 30))
    #expect(session.recorder.terminationStatus == 3, "\(session.stderr)")
    expectOutputsWritten(session)
  }

  /// A command that ignores SIGINT survives the first; the second kills its whole group at once.
  @Test func secondInterruptKillsACommandThatIgnoresTheFirst() throws {
    let session = try start(
      "ignore-int", command: ["/bin/sh", "-c", "trap '' INT; while :; do sleep 0.05; done"])
    waitForTrap(of: SIGINT, in: session)
    kill(session.recorder.processIdentifier, SIGINT)
    // The first SIGINT must not have ended it: checked for a moment, well inside the 5 s grace.
    #expect(RecorderReadiness.waitUntilGone(pid: session.command, seconds: 0.5) == nil)
    #expect(session.recorder.isRunning)
    let second = Date()
    kill(session.recorder.processIdentifier, SIGINT)
    #expect(RecorderReadiness.waitUntilGone(pid: session.command, seconds: 1) != nil)
    #expect(RecorderReadiness.waitForExit(of: session.recorder, seconds: 30))
    print(
      "second SIGINT: record exited after \(String(format: "%.3f", Date().timeIntervalSince(second))) s"
    )
    #expect(session.recorder.terminationStatus == 137, "\(session.stderr)")
    #expect(session.stderr.contains("killed (SIGKILL to its process group) on a second signal"))
    expectOutputsWritten(session)
  }

  /// A command that ignores SIGTERM is killed when the 5 s grace ends, and the outputs are written.
  @Test func graceEndsInAKill() throws {
    let session = try start(
      "ignore-term", command: ["/bin/sh", "-c", "trap '' TERM; while :; do sleep 0.05; done"])
    waitForTrap(of: SIGTERM, in: session)
    let sent = Date()
    kill(session.recorder.processIdentifier, SIGTERM)
    #expect(RecorderReadiness.waitForExit(of: session.recorder, seconds: 30))
    let waited = Date().timeIntervalSince(sent)
    print("ignored SIGTERM: record exited after \(String(format: "%.3f", waited)) s")
    #expect(waited >= 4.5 && waited < 15)
    #expect(session.recorder.terminationStatus == 137, "\(session.stderr)")
    #expect(session.stderr.contains("did not exit within 5 s of SIGTERM"))
    #expect(!RecorderReadiness.isRunning(pid: session.command))
    expectOutputsWritten(session)
  }

  /// With --pid nothing is signalled: the process we did not start keeps running, record exits 0.
  @Test func pidModeNeverSignalsTheProcess() throws {
    let target = Process()
    target.executableURL = URL(fileURLWithPath: "/bin/sleep")
    target.arguments = ["30"]
    try target.run()
    defer { target.terminate() }
    let directory = try TestEnvironment.temporaryDirectory("pid-signal")
    let stderrFile = directory.appendingPathComponent("stderr.txt")
    let output = directory.appendingPathComponent("a.pb.gz")
    let recorder = try RecorderReadiness.start(
      ["-q", "--pid", String(target.processIdentifier), "-o", output.path], stderrFile: stderrFile)
    for signal in [SIGHUP] { kill(recorder.processIdentifier, signal) }
    #expect(RecorderReadiness.waitForExit(of: recorder, seconds: 30))
    #expect(recorder.terminationStatus == 0, "\(RecorderReadiness.text(of: stderrFile))")
    #expect(target.isRunning)
    #expect(FileManager.default.fileExists(atPath: output.path))
  }
}
