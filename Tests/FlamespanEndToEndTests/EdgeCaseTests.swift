import FlamespanExport
import FlamespanModel
import FlamespanProcess
import FlamespanTestSupport
import Foundation
import Testing

/// The quiet losses at the edges (issue 25, item 5), each through the real binary.
@Suite struct EdgeCaseTests {
  func flamespan(_ arguments: [String]) throws -> Run.Result {
    try Run.command([TestEnvironment.flamespanBinary] + arguments)
  }

  /// A missing --spans-output directory used to be found after the whole recording, losing every span.
  @Test func spansOutputInAMissingDirectoryFailsBeforeSampling() throws {
    let started = Date()
    let result = try flamespan([
      "record", "-d", "60", "-o", "/tmp/flamespan-edge.folded", "--spans-output",
      "/nonexistent-flamespan-dir/spans.json",
    ])
    #expect(result.status == 64, "\(result.stderr)")
    #expect(result.stderr.contains("--spans-output"), "\(result.stderr)")
    #expect(result.stderr.contains("/nonexistent-flamespan-dir"), "\(result.stderr)")
    #expect(Date().timeIntervalSince(started) < 5, "it sampled before failing")
  }

  @Test func drillOutputInAMissingDirectoryFailsBeforeReading() throws {
    let result = try flamespan([
      "drill", "/nonexistent-input.pb.gz", "-o", "/nonexistent-flamespan-dir/out.folded",
    ])
    #expect(result.status == 64, "\(result.stderr)")
    #expect(result.stderr.contains("/nonexistent-flamespan-dir"), "\(result.stderr)")
  }

  /// 64 MiB of zeros gzip to about 64 KiB: past 20× the file (and the 16 MiB floor) the reader stops,
  /// with a message, instead of inflating it all.
  @Test(arguments: ["spans", "drill"])
  func gzipBombIsRefusedWithACap(command: String) throws {
    let directory = try TestEnvironment.temporaryDirectory("gzip-bomb")
    defer { try? FileManager.default.removeItem(at: directory) }
    let bomb = directory.appendingPathComponent("bomb.pb.gz")
    let compressed = try Gzip.compress([UInt8](repeating: 0, count: 64 << 20))
    try Data(compressed).write(to: bomb)
    var arguments = [command, bomb.path]
    if command == "drill" {
      arguments += ["-o", directory.appendingPathComponent("x.folded").path]
    }
    let result = try flamespan(arguments)
    #expect(result.status == 1, "\(result.stderr)")
    #expect(result.stderr.contains("gzip bomb"), "\(result.stderr)")
    #expect(result.stderr.contains("16 MiB"), "\(result.stderr)")
    print("gzip bomb: \(compressed.count) bytes compressed, refused: \(result.stderr)")
  }

  /// A crafted profile's span and function names carry escape sequences (clear screen, set the title,
  /// right-to-left override); the table shows them escaped, never as raw control bytes.
  @Test func controlBytesInSpanNamesAreEscaped() throws {
    let directory = try TestEnvironment.temporaryDirectory("escapes")
    defer { try? FileManager.default.removeItem(at: directory) }
    let path = directory.appendingPathComponent("crafted.pb.gz").path
    let span = SpanContext(
      traceID: [UInt8](repeating: 0xab, count: 16), spanID: [UInt8](repeating: 0xcd, count: 8),
      name: "GET /\u{1b}[2J\u{1b}[31mred\u{7}\u{202e}")
    let frame = ResolvedLocation(
      address: 0x1000, mapping: nil, frames: [SourceFrame(function: "f\u{1b}]0;pwned\u{7}")])
    let profile = Profile(
      samples: [
        ProfileSample(stack: [frame], pid: 1, tid: 1, threadName: "t", span: span, count: 5)
      ],
      periodNanos: 10_000_000, startTimeNanos: 0, durationNanos: 1_000_000_000)
    try ProfileExporter.write(profile, to: path, title: "crafted")
    let result = try flamespan(["spans", path])
    #expect(result.status == 0, "\(result.stderr)")
    let controls = result.stdout.unicodeScalars.filter {
      ($0.value < 0x20 && $0 != "\n") || (0x7f...0x9f).contains($0.value) || $0 == "\u{202e}"
    }
    #expect(controls.isEmpty, "raw control characters in: \(result.stdout.debugDescription)")
    #expect(result.stdout.contains("GET /\\x1b[2J\\x1b[31mred\\x07"), "\(result.stdout)")
    #expect(result.stdout.contains("\\u{202e}"), "\(result.stdout)")
    #expect(result.stdout.contains("f\\x1b]0;pwned\\x07"), "\(result.stdout)")
  }

  /// A file that exists but is not executable is "Permission denied", as the shell says, not "No such
  /// file or directory".
  @Test(.requires(.bpf)) func nonExecutableCommandIsPermissionDenied() throws {
    let directory = try TestEnvironment.temporaryDirectory("noexec")
    defer { try? FileManager.default.removeItem(at: directory) }
    let script = directory.appendingPathComponent("script.sh")
    try "#!/bin/sh\necho hi\n".write(to: script, atomically: true, encoding: .utf8)
    try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: script.path)
    let denied = try flamespan([
      "record", "-q", "-o", directory.appendingPathComponent("a.folded").path, "--", script.path,
    ])
    #expect(denied.status == 1, "\(denied.stderr)")
    #expect(denied.stderr.contains("Permission denied"), "\(denied.stderr)")
    #expect(!denied.stderr.contains("No such file"), "\(denied.stderr)")
    let missing = try flamespan([
      "record", "-q", "-o", directory.appendingPathComponent("b.folded").path, "--",
      directory.appendingPathComponent("absent").path,
    ])
    #expect(missing.status == 1)
    #expect(missing.stderr.contains("No such file or directory"), "\(missing.stderr)")
  }

  /// --pid P also samples the children P had before the recording started.
  @Test(.requires(.bpf)) func pidTakesTheDescendantsItAlreadyHas() throws {
    let directory = try TestEnvironment.temporaryDirectory("descendants")
    defer { try? FileManager.default.removeItem(at: directory) }
    let samples = try TestEnvironment.buildSamples(into: directory)
    let hotpaths = samples.appendingPathComponent("hotpaths").path
    // The parent only waits for its child shell, which waits for the workload. No `wait` builtin: it
    // sleeps for SIGCHLD, which Foundation's Process leaves blocked in what it starts. Its output goes
    // nowhere, so no leftover can hold the test's pipes open.
    let parent = Process()
    parent.executableURL = URL(fileURLWithPath: "/bin/sh")
    parent.arguments = ["-c", "/bin/sh -c '\(hotpaths) 30; true'; true"]
    parent.standardOutput = FileHandle.nullDevice
    parent.standardError = FileHandle.nullDevice
    try parent.run()
    defer {
      for pid in ProcessInspector.descendants(of: [parent.processIdentifier]) + [
        parent.processIdentifier
      ] {
        kill(pid, SIGKILL)
      }
      parent.waitUntilExit()
    }
    // Both generations must exist before the recording starts.
    let deadline = Date().addingTimeInterval(10)
    while Date() < deadline && !Self.hasDescendant(named: "hotpaths", of: parent.processIdentifier)
    {
      usleep(10_000)
    }
    #expect(Self.hasDescendant(named: "hotpaths", of: parent.processIdentifier))
    let folded = directory.appendingPathComponent("tree.folded")
    let result = try flamespan([
      "record", "-q", "-F", "199", "--pid", String(parent.processIdentifier), "-d", "2", "-o",
      folded.path,
    ])
    #expect(result.status == 0, "\(result.stderr)")
    let profile = try FoldedProfile(contentsOf: folded)
    let grandchild = profile.count { $0.first == "hotpaths" }
    print("--pid parent: \(grandchild) samples of its grandchild hotpaths")
    #expect(grandchild > 50, "the existing grandchild was not sampled: \(result.stderr)")
  }

  static func hasDescendant(named name: String, of pid: Int32) -> Bool {
    ProcessInspector.descendants(of: [pid]).contains { child in
      (try? String(contentsOfFile: "/proc/\(child)/comm", encoding: .utf8))?.hasPrefix(name)
        ?? false
    }
  }
}
