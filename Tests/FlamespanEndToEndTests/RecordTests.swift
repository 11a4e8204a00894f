import FlamespanTestSupport
import Foundation
import Testing

/// `flamespan record` run as a user would run it, on the real kernel, against workloads built from
/// samples/. Serialized: they measure CPU shares, so they must not compete with each other for the cores.
@Suite(.serialized) struct RecordTests {
  static let samples = TestEnvironment.sharedSamples

  func sample(_ name: String) throws -> String {
    try Self.samples.get().appendingPathComponent(name).path
  }

  func record(_ arguments: [String]) throws -> Run.Result {
    try Run.command([TestEnvironment.flamespanBinary, "record"] + arguments)
  }

  /// Needs go as well, for `go tool pprof` in `checkPprofShowsTheInlineChain`.
  @Test(.requires(.bpf, .tool("perf"), .tool("go")))
  func hotPathSharesMatchPerfWithinFivePoints() throws {
    let out = try TestEnvironment.temporaryDirectory("hotpaths")
    let folded = out.appendingPathComponent("hot.folded")
    let pprof = out.appendingPathComponent("hot.pb.gz")
    let result = try record([
      "-F", "499", "-q", "-o", folded.path, "-o", pprof.path, "--", try sample("hotpaths"), "3",
    ])
    #expect(result.status == 0, "stderr: \(result.stderr)")
    try checkPprofShowsTheInlineChain(pprof)
    let profile = try FoldedProfile(contentsOf: folded)
    let ours = profile.count { $0.first == "hotpaths" }
    let heavy = profile.selfCount(of: "hot_path_heavy", allowingInline: ["mix_step"])
    let light = profile.selfCount(of: "hot_path_light", allowingInline: ["mix_step"])
    // 500 samples put the statistical spread of a 75% share near 2 points, inside the 5-point bound.
    #expect(ours > 500, "only \(ours) samples of hotpaths")
    let ourHeavy = 100 * Double(heavy) / Double(ours)
    let ourLight = 100 * Double(light) / Double(ours)

    let perfData = out.appendingPathComponent("perf.data").path
    let perfRun = try Run.command([
      "perf", "record", "-q", "-F", "499", "-g", "-o", perfData, "--", try sample("hotpaths"), "3",
    ])
    #expect(perfRun.status == 0, "perf record: \(perfRun.stderr)")
    let report = try Run.command([
      "perf", "report", "-i", perfData, "--stdio", "--no-children", "--sort", "sym", "-g", "none",
      "--percent-limit", "0",
    ])
    let perfHeavy = try #require(
      Self.perfPercent(of: "hot_path_heavy", in: report.stdout), "\(report.stdout)")
    let perfLight = try #require(
      Self.perfPercent(of: "hot_path_light", in: report.stdout), "\(report.stdout)")
    print(
      "hot_path_heavy: flamespan \(ourHeavy)% perf \(perfHeavy)%; hot_path_light: flamespan \(ourLight)% perf \(perfLight)%"
    )
    #expect(abs(ourHeavy - perfHeavy) <= 5)
    #expect(abs(ourLight - perfLight) <= 5)
    // The workload is built for a 3:1 split.
    #expect(abs(ourHeavy - 75) <= 7)

    // Frame-pointer stacks read main → run_workload → hot path, with the inline helper on top.
    let complete = profile.count { frames in
      guard let main = frames.firstIndex(of: "main") else { return false }
      return Array(frames[main...].prefix(3)) == ["main", "run_workload", "hot_path_heavy"]
    }
    #expect(
      Double(complete) >= 0.95 * Double(heavy), "\(complete) of \(heavy) heavy samples reach main")
    #expect(
      profile.count { $0.suffix(2) == ["hot_path_heavy", "mix_step"] } > 0,
      "no inline mix_step frame")
  }

  /// go tool pprof reads the recording: the inline helper appears as an inline frame of the hot path, the
  /// summary's hot functions lead -top, and every sample carries pid, tid and thread_name.
  func checkPprofShowsTheInlineChain(_ pprof: URL) throws {
    let environment = [
      "HOME": NSTemporaryDirectory(), "GOCACHE": NSTemporaryDirectory() + "/gocache",
    ]
    let traces = try Run.command(
      ["go", "tool", "pprof", "-traces", pprof.path], environment: environment)
    #expect(traces.status == 0, "\(traces.stderr)")
    let lines = traces.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
    let inlined = lines.indices.contains { (index: Int) -> Bool in
      guard index + 1 < lines.count else { return false }
      let inlinedHere: Bool = lines[index].contains("mix_step") && lines[index].contains("(inline)")
      return inlinedHere && lines[index + 1].contains("hot_path_heavy")
    }
    #expect(
      inlined, "no `mix_step (inline)` above hot_path_heavy in:\n\(traces.stdout.prefix(3000))")
    let top = try Run.command(
      ["go", "tool", "pprof", "-top", pprof.path], environment: environment)
    #expect(top.stdout.contains("hot_path_heavy"), "\(top.stdout)")
    let tags = try Run.command(
      ["go", "tool", "pprof", "-tags", pprof.path], environment: environment)
    for label in ["pid:", "tid:", "thread_name:", "hotpaths"] {
      #expect(
        tags.stdout.contains(label), "\(label) missing from -tags:\n\(tags.stdout.prefix(2000))")
    }
  }

  static func perfPercent(of symbol: String, in report: String) -> Double? {
    for line in report.split(separator: "\n") where line.hasSuffix(" \(symbol)") {
      let field = line.split(separator: " ").first { $0.hasSuffix("%") }
      if let field, let value = Double(field.dropLast()) { return value }
    }
    return nil
  }

  /// `--kernel-aggregation` counts stacks in kernel maps, the only mode that sizes them for use (the
  /// streaming mode shrinks them to one entry): it must give the same hot functions, whole stacks.
  @Test(.requires(.bpf)) func kernelAggregationCountsTheHotPaths() throws {
    let out = try TestEnvironment.temporaryDirectory("kernel-aggregation")
    let folded = out.appendingPathComponent("hot.folded")
    let result = try record([
      "--kernel-aggregation", "-F", "199", "-q", "-o", folded.path, "--", try sample("hotpaths"),
      "2",
    ])
    #expect(result.status == 0, "stderr: \(result.stderr)")
    let profile = try FoldedProfile(contentsOf: folded)
    let ours = profile.count { $0.first == "hotpaths" }
    let heavy = profile.count { frames in
      guard let main = frames.firstIndex(of: "main") else { return false }
      return Array(frames[main...].prefix(3)) == ["main", "run_workload", "hot_path_heavy"]
    }
    // hot_path_heavy holds about three quarters of the work; other suites may share the CPUs.
    #expect(ours >= 100, "only \(ours) samples of hotpaths")
    #expect(Double(heavy) >= 0.6 * Double(ours), "\(heavy) of \(ours) samples under hot_path_heavy")
  }

  @Test(.requires(.bpf)) func atLeastNinetyFivePercentOfExpectedSamplesArrive() throws {
    let out = try TestEnvironment.temporaryDirectory("rate")
    let folded = out.appendingPathComponent("rate.folded")
    // /usr/bin/time reports the CPU time the workload really got, which is what the samples must cover.
    let result = try record([
      "-F", "499", "-q", "-o", folded.path, "--", "/usr/bin/time", "-f", "cpu-seconds %U %S",
      try sample("hotpaths"), "3", "2",
    ])
    #expect(result.status == 0, "stderr: \(result.stderr)")
    let line = try #require(
      result.stderr.split(separator: "\n").first { $0.hasPrefix("cpu-seconds") })
    let parts = line.split(separator: " ").compactMap { Double($0) }
    let cpuSeconds = parts.reduce(0, +)
    let profile = try FoldedProfile(contentsOf: folded)
    let got = profile.count { $0.first == "hotpaths" }
    // 499 Hz gives thousands of samples, so the statistical spread on a shared machine stays near 2%.
    let expected = cpuSeconds * 499
    print(
      "samples: \(got) of \(Int(expected)) expected from \(cpuSeconds) CPU seconds (\(100 * Double(got) / expected)%)"
    )
    #expect(Double(got) >= 0.95 * expected)
    #expect(result.stderr.contains("Lost samples: 0"), "summary: \(result.stderr)")
  }

  /// The same pid runs a shell loop, then execs the workload: each image's samples resolve against the
  /// mappings of that image, never the other's.
  @Test(.requires(.bpf)) func processThatExecsKeepsBothImagesApart() throws {
    let out = try TestEnvironment.temporaryDirectory("exec")
    let folded = out.appendingPathComponent("exec.folded")
    let script =
      "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; exec \(try sample("hotpaths")) 1"
    let result = try record(["-F", "499", "-q", "-o", folded.path, "--", "/bin/sh", "-c", script])
    #expect(result.status == 0, "stderr: \(result.stderr)")
    let profile = try FoldedProfile(contentsOf: folded)
    let before = profile.stacks.filter { $0.frames.first == "sh" }
    let after = profile.stacks.filter { $0.frames.first == "hotpaths" }
    let workloadFunctions: Set<String> = [
      "main", "run_workload", "hot_path_heavy", "hot_path_light", "mix_step",
    ]
    #expect(before.reduce(0) { $0 + $1.count } > 20, "the shell loop left too few samples")
    #expect(after.reduce(0) { $0 + $1.count } > 100, "the exec'd workload left too few samples")
    #expect(
      before.allSatisfy { Set($0.frames).isDisjoint(with: workloadFunctions) },
      "shell samples named workload code")
    let resolved = after.filter {
      $0.frames.contains("hot_path_heavy") || $0.frames.contains("hot_path_light")
    }
    #expect(
      Double(resolved.reduce(0) { $0 + $1.count }) >= 0.9
        * Double(after.reduce(0) { $0 + $1.count }),
      "workload samples after exec were not symbolized")
  }

  @Test(.requires(.bpf)) func processExitingMidRecordingStillGetsSymbolized() throws {
    let out = try TestEnvironment.temporaryDirectory("exit")
    let folded = out.appendingPathComponent("machine.folded")
    let recorder = Process()
    recorder.executableURL = URL(fileURLWithPath: TestEnvironment.flamespanBinary)
    // 499 Hz keeps the count well clear of the bound on a loaded machine.
    recorder.arguments = ["record", "-q", "-F", "499", "-d", "5s", "-o", folded.path]
    let stderrFile = out.appendingPathComponent("stderr.txt")
    try RecorderReadiness.captureStderr(of: recorder, into: stderrFile)
    try recorder.run()
    // The workload lives one second: started before the programs are attached (a fixed wait was not
    // always enough under the full suite's load), it left no samples.
    let attached = RecorderReadiness.wait(for: recorder, stderrFile: stderrFile)
    #expect(attached, "flamespan record never started: \(RecorderReadiness.text(of: stderrFile))")
    let workload = try Run.command([try sample("hotpaths"), "1"])
    #expect(workload.status == 0)
    recorder.waitUntilExit()
    #expect(recorder.terminationStatus == 0)
    let profile = try FoldedProfile(contentsOf: folded)
    let hot = profile.count {
      $0.first == "hotpaths" && $0.contains("hot_path_heavy") && $0.contains("main")
    }
    let anyHotpaths = profile.count { $0.first == "hotpaths" }
    #expect(anyHotpaths > 50, "the exited process left only \(anyHotpaths) samples")
    #expect(
      Double(hot) >= 0.6 * Double(anyHotpaths),
      "\(hot) of \(anyHotpaths) samples symbolized to hot_path_heavy")
  }

  @Test(.requires(.bpf)) func ctrlCStopsEarlyAndStillWritesEveryOutput() throws {
    let out = try TestEnvironment.temporaryDirectory("sigint")
    let paths = ["a.pb.gz", "a.folded", "a.svg"].map { out.appendingPathComponent($0).path }
    let recorder = Process()
    recorder.executableURL = URL(fileURLWithPath: TestEnvironment.flamespanBinary)
    recorder.arguments = ["record", "-q", "-d", "60"] + paths.flatMap { ["-o", $0] }
    let stderrFile = out.appendingPathComponent("stderr.txt")
    try RecorderReadiness.captureStderr(of: recorder, into: stderrFile)
    let started = Date()
    try recorder.run()
    // Interrupt only once it samples; on a loaded machine loading the BPF programs can take longer than
    // any fixed wait, and a recording stopped before it began is empty.
    let attached = RecorderReadiness.wait(for: recorder, stderrFile: stderrFile, seconds: 20)
    #expect(attached, "flamespan record never started: \(RecorderReadiness.text(of: stderrFile))")
    // Idle CPUs are not recorded, so keep one busy: on a quiet machine a second of sampling can be empty.
    let load = Process()
    load.executableURL = URL(fileURLWithPath: try sample("hotpaths"))
    load.arguments = ["2"]
    load.standardOutput = FileHandle.nullDevice
    try load.run()
    Thread.sleep(forTimeInterval: 1.0)
    kill(recorder.processIdentifier, SIGINT)
    recorder.waitUntilExit()
    load.waitUntilExit()
    #expect(recorder.terminationStatus == 0)
    #expect(Date().timeIntervalSince(started) < 30)
    for path in paths {
      let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
      #expect(size > 0, "\(path) missing or empty")
    }
  }
}
