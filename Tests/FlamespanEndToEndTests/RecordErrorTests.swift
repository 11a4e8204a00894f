import FlamespanTestSupport
import Foundation
import Testing

/// Mistakes a user makes get one clear sentence and a non-zero exit, before any BPF is loaded.
@Suite struct RecordErrorTests {
  func record(_ arguments: [String]) throws -> Run.Result {
    try Run.command([TestEnvironment.flamespanBinary, "record"] + arguments)
  }

  @Test(.requires(.bpf)) func missingPidIsNamed() throws {
    let result = try record(["--pid", "999999", "-d", "1", "-o", "/tmp/flamespan-never.folded"])
    #expect(result.status != 0)
    #expect(result.stderr.contains("no process with pid 999999"), "stderr: \(result.stderr)")
  }

  @Test func unwritableOutputIsRefusedBeforeRecording() throws {
    let result = try record(["-d", "1", "-o", "/nonexistent-dir/profile.pb.gz"])
    #expect(result.status != 0)
    #expect(result.stderr.contains("/nonexistent-dir"), "stderr: \(result.stderr)")
  }

  @Test func unknownExtensionListsTheFormats() throws {
    let result = try record(["-d", "1", "-o", "/tmp/profile.txt"])
    #expect(result.status != 0)
    #expect(
      result.stderr.contains(".pb.gz") && result.stderr.contains(".svg"), "stderr: \(result.stderr)"
    )
  }

  @Test func badDurationSaysWhatIsAccepted() throws {
    let result = try record(["-d", "soon", "-o", "/tmp/x.folded"])
    #expect(result.status != 0)
    #expect(result.stderr.contains("500ms"), "stderr: \(result.stderr)")
  }

  @Test func noOutputGivesAnExample() throws {
    let result = try record(["-d", "1"])
    #expect(result.status != 0)
    #expect(result.stderr.contains("-o profile.pb.gz"), "stderr: \(result.stderr)")
  }

  @Test func unknownHTTPHooksNameTheChoices() throws {
    let result = try record(["-d", "1", "--http-hooks", "kprobes", "-o", "/tmp/x.folded"])
    #expect(result.status != 0)
    #expect(
      result.stderr.contains("auto, socket or syscalls") && result.stderr.contains("kprobes"),
      "stderr: \(result.stderr)")
  }
}
