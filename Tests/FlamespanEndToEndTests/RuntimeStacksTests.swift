import FlamespanTestSupport
import Foundation
import Testing

/// `flamespan record --pid PID` with DEFAULT flags on real programs of each language runtime (samples/), under
/// loopback load: stacks through Go, C++ and Rust without frame pointers reach their roots, Go frames are
/// named even in a stripped binary, and samples in Node's and Java's JIT code name their functions. The
/// goals are those of bench/runtimes/stacks.sh, which also gives perf's figures for the same workloads.
/// Serialized: each wants the CPUs to itself.
@Suite(.serialized) struct RuntimeStacksTests {
  static let samples = TestEnvironment.sharedSamples

  /// Seconds of sampling at the default 99 Hz: a few hundred samples per busy CPU.
  static let recordSeconds = 4

  /// The sample `name` (a file under the samples' build directory). The Makefile skips a sample whose
  /// compiler is missing, so each test requires that compiler: here a missing sample is a failure.
  func sample(_ name: String) throws -> String {
    let path = try Self.samples.get().appendingPathComponent(name).path
    guard FileManager.default.fileExists(atPath: path) else {
      throw TestFailure(
        "\(name) was not built although its compiler is installed (samples/Makefile)")
    }
    return path
  }

  /// Starts `command` (a server: it gets port 0 and prints `listening PORT`; otherwise a workload that runs
  /// until stopped), runs `warmUp`, then records it with default flags for `recordSeconds` while wrk loads
  /// the server, and returns the folded profile (the pprof output is written too and must be valid).
  func record(
    _ label: String, command: [String], isServer: Bool = true,
    warmUp: (_ pid: Int32, _ port: Int) throws -> Void = { _, _ in }
  ) throws -> FoldedProfile {
    let out = try TestEnvironment.temporaryDirectory("runtime-\(label)")
    // In a directory of its own (env -C, which then execs it: same pid), where V8's isolate log goes.
    let arguments = ["/usr/bin/env", "-C", out.path] + command + (isServer ? ["0"] : [])
    // BackgroundProcess is Agent/AgentHarness.swift's: output in files; stopped with SIGKILL, which no server
    // can ignore.
    let workload = try BackgroundProcess(arguments, logs: out, label: "workload")
    defer {
      _ = workload.stop(signal: SIGKILL)
      try? FileManager.default.removeItem(atPath: "/tmp/perf-\(workload.pid).map")
    }
    var port = 0
    if isServer {
      port = try #require(
        ReadyLine.port(in: workload.stdoutFile, from: workload.process),
        "\(label) never printed its port: \(workload.stdout) \(workload.stderr)")
      try warmUp(workload.pid, port)
    }

    let folded = out.appendingPathComponent("profile.folded")
    let pprof = out.appendingPathComponent("profile.pb.gz")
    let recorder = Process()
    recorder.executableURL = URL(fileURLWithPath: TestEnvironment.flamespanBinary)
    recorder.arguments = [
      "record", "--pid", String(workload.pid), "-d", "\(Self.recordSeconds)s", "-o", folded.path,
      "-o", pprof.path,
    ]
    recorder.standardOutput = FileHandle.nullDevice
    let stderrFile = out.appendingPathComponent("record.stderr")
    try RecorderReadiness.captureStderr(of: recorder, into: stderrFile)
    try recorder.run()
    defer { if recorder.isRunning { recorder.interrupt() } }
    let attached = RecorderReadiness.wait(for: recorder, stderrFile: stderrFile)
    try #require(attached, "record never started: \(RecorderReadiness.text(of: stderrFile))")
    if isServer {
      // Bounded: it outlasts the recording by a second, then stops by itself.
      let load = try Run.command(
        [
          "wrk", "-t1", "-c2", "-d\(Self.recordSeconds + 1)s", "http://127.0.0.1:\(port)/burn",
        ])
      #expect(load.status == 0, "wrk: \(load.stderr)")
    }
    recorder.waitUntilExit()
    #expect(
      recorder.terminationStatus == 0, "record: \(RecorderReadiness.text(of: stderrFile))")
    let attributes = try? FileManager.default.attributesOfItem(atPath: pprof.path)
    let written = (attributes?[.size] as? NSNumber)?.intValue ?? 0
    #expect(written > 0, "no pprof output")
    return try FoldedProfile(contentsOf: folded)
  }

  /// Of the samples `select` picks (at least `minimum` of them), the share that `satisfy` accepts must be
  /// at least `goal` (a fraction). The floor is what 4 s gives a workload that gets an eighth of a CPU:
  /// the suite runs other suites beside this one, and the share is what is asserted (at a 99% goal, 50
  /// samples allow no miss at all).
  func expectShare(
    _ what: String, of profile: FoldedProfile, select: ([String]) -> Bool,
    satisfy: ([String]) -> Bool, goal: Double, minimum: Int = 50,
    sourceLocation: SourceLocation = #_sourceLocation
  ) {
    let selected = profile.count { select(Array($0.dropFirst())) }
    let satisfied = profile.count {
      select(Array($0.dropFirst())) && satisfy(Array($0.dropFirst()))
    }
    let percent = selected > 0 ? 100 * Double(satisfied) / Double(selected) : 0
    print("\(what): \(satisfied) of \(selected) (\(String(format: "%.1f", percent))%)")
    #expect(
      selected >= minimum, "\(what): only \(selected) samples", sourceLocation: sourceLocation)
    #expect(
      Double(satisfied) >= goal * Double(selected),
      "\(what): \(satisfied) of \(selected) = \(percent)%, goal \(100 * goal)%",
      sourceLocation: sourceLocation)
  }

  // MARK: - Native code without frame pointers

  @Test(.requires(.bpf)) func cppTemplatesWithoutFramePointersReachMain() throws {
    let binary = try sample("nofp_templates")
    let profile = try record("nofp-templates", command: [binary, "60"], isServer: false)
    expectShare(
      "nofp_templates: hot samples reaching main", of: profile,
      select: { $0.contains { $0.hasPrefix("Mixer<3>::mix") || $0.hasPrefix("Mixer<1>::mix") } },
      satisfy: { $0.contains("main") }, goal: 0.99)
  }

  @Test(.requires(.bpf, .tool("rustc"))) func rustWithoutFramePointersReachesMain() throws {
    let binary = try sample("nofp_rust")
    let profile = try record("nofp-rust", command: [binary, "60"], isServer: false)
    expectShare(
      "nofp_rust: hot samples reaching main", of: profile,
      select: { $0.contains("nofp_rust::mix") },
      satisfy: { $0.contains("main") && $0.contains("nofp_rust::main") }, goal: 0.99)
  }

  // MARK: - Go

  /// Hot: the handler chain, or sha256 (which only main.burn calls), so that a stack cut short above
  /// crypto/sha256.block (assembly that uses BP as a scratch register) still counts.
  static func isGoHot(_ frames: [String]) -> Bool {
    frames.contains { frame in
      frame.hasPrefix("crypto/sha256.")
        || ["main.burn", "main.handle"].contains(frame)
        || (frame.hasPrefix("main.level") && frame.count == "main.level1".count)
    }
  }

  /// A frame with no name: `[unknown] 0x…`, `[anon] 0x…`, `file+0x…`, a bare address.
  static func isUnnamed(_ frame: String) -> Bool {
    if frame.hasPrefix("[unknown]") || frame.hasPrefix("[anon]") || frame.hasPrefix("0x") {
      return true
    }
    guard let plus = frame.range(of: "+0x", options: .backwards) else { return false }
    let digits = frame[plus.upperBound...]
    return !digits.isEmpty && digits.allSatisfy(\.isHexDigit)
  }

  /// A named Go frame: main or a package of the standard library (the sample uses nothing else).
  static func isNamedGoFrame(_ frame: String) -> Bool {
    if frame.hasPrefix("type..") || frame.hasPrefix("go.") { return true }
    let packages = [
      "main", "runtime", "internal", "vendor", "net", "crypto", "sync", "syscall", "bufio", "io",
      "fmt",
      "os", "strconv", "time", "context", "reflect", "sort", "strings", "bytes", "errors",
      "unicode",
      "math", "hash", "log", "mime", "path", "encoding", "compress", "container", "text",
    ]
    return packages.contains { frame.hasPrefix($0 + ".") || frame.hasPrefix($0 + "/") }
  }

  func checkGo(_ name: String) throws {
    let binary = try sample(name)
    let profile = try record(name, command: [binary])
    expectShare(
      "\(name): hot samples reaching runtime.goexit or main.main", of: profile,
      select: Self.isGoHot,
      satisfy: { $0.contains("runtime.goexit") || $0.contains("main.main") }, goal: 0.99)
    // Named Go frames of the hot samples (kernel frames left out), per frame.
    var named = 0
    var unnamed = 0
    for (frames, count) in profile.stacks where Self.isGoHot(Array(frames.dropFirst())) {
      for frame in frames.dropFirst() where !frame.hasPrefix("[kernel]") {
        if Self.isUnnamed(frame) {
          unnamed += count
        } else if Self.isNamedGoFrame(frame) {
          named += count
        }
      }
    }
    print("\(name): \(named) of \(named + unnamed) Go frames of hot samples named")
    #expect(named + unnamed >= 100, "only \(named + unnamed) Go frames in hot samples")
    #expect(
      Double(named) >= 0.99 * Double(named + unnamed),
      "\(name): \(unnamed) of \(named + unnamed) Go frames of hot samples unnamed")
  }

  @Test(.requires(.bpf, .tool("wrk"), .tool("go")))
  func goStacksReachGoexitThroughTheHandlerChain() throws {
    try checkGo("go_http")
  }

  @Test(.requires(.bpf, .tool("wrk"), .tool("go")))
  func strippedGoFramesAreNamedFromPclntab() throws {
    try checkGo("go_http_stripped")
  }

  // MARK: - JIT code: Node and Java

  static func isJITLeaf(_ frames: [String]) -> Bool {
    guard let leaf = frames.last else { return false }
    return leaf.hasSuffix(" [jit]") || leaf.hasPrefix("[anon]")
  }

  /// The JIT leaf's name, when it has one.
  static func jitName(_ frames: [String]) -> String? {
    guard let leaf = frames.last, leaf.hasSuffix(" [jit]") else { return nil }
    let name = String(leaf.dropLast(" [jit]".count))
    return Self.isUnnamed(name) ? nil : name
  }

  @Test(.requires(.bpf, .tool("wrk"), .tool("node")))
  func nodeJITSamplesNameTheirJavaScriptFunctions() throws {
    let script = try sample("node_http.js")
    let profile = try record(
      "node", command: ["node", "--perf-basic-prof", script],
      warmUp: { _, port in
        // Until V8 has optimized burnSlow and burnFast (their loops tier up within a second).
        let load = try Run.command(["wrk", "-t1", "-c2", "-d2s", "http://127.0.0.1:\(port)/burn"])
        #expect(load.status == 0, "wrk: \(load.stderr)")
      })
    // A JavaScript function: V8's own code keeps its tag (`Builtin:…`, `BytecodeHandler:…`, `Stub:…`).
    expectShare(
      "node: JIT-leaf samples naming a JS function", of: profile, select: Self.isJITLeaf,
      satisfy: { frames in
        guard let name = Self.jitName(frames) else { return false }
        let tag = name.prefix { $0.isLetter }
        return tag.isEmpty || !name.dropFirst(tag.count).hasPrefix(":")
      }, goal: 0.90)
    expectShare(
      "node: all samples naming burnSlow or burnFast", of: profile, select: { _ in true },
      satisfy: { frames in
        frames.contains { $0.hasPrefix("burnSlow") || $0.hasPrefix("burnFast") }
      }, goal: 0.75)
  }

  @Test(.requires(.bpf, .tool("wrk"), .tool("java"), .tool("jcmd"), .tool("javac")))
  func javaJITSamplesNameTheirMethods() throws {
    _ = try sample("java/JavaHttp.class")
    let classes = try Self.samples.get().appendingPathComponent("java").path
    let profile = try record(
      "java",
      command: [
        "java", "-XX:+PreserveFramePointer", "-XX:CompileCommand=quiet",
        "-XX:CompileCommand=dontinline,JavaHttp::flamespan*", "-cp", classes, "JavaHttp",
      ],
      warmUp: { pid, port in
        // C2 compiles the hot methods within a second or two of load; then the JVM writes its perf map.
        let load = try Run.command(["wrk", "-t1", "-c2", "-d3s", "http://127.0.0.1:\(port)/burn"])
        #expect(load.status == 0, "wrk: \(load.stderr)")
        let perfmap = try Run.command(["jcmd", String(pid), "Compiler.perfmap"])
        try #require(perfmap.status == 0, "jcmd: \(perfmap.stdout) \(perfmap.stderr)")
        try #require(FileManager.default.fileExists(atPath: "/tmp/perf-\(pid).map"))
      })
    // A Java method (`long JavaHttp.flamespanMixLight(long)`), not the interpreter or a stub.
    expectShare(
      "java: JIT-leaf samples naming a Java method", of: profile, select: Self.isJITLeaf,
      satisfy: { frames in
        guard let name = Self.jitName(frames), let paren = name.firstIndex(of: "(") else {
          return false
        }
        return name[..<paren].split(separator: " ").last?.contains(".") == true
      }, goal: 0.90)
    let hot = profile.count { frames in
      frames.contains { $0.contains("JavaHttp.flamespanSieveHeavy(") }
    }
    #expect(hot >= 100, "only \(hot) samples name JavaHttp.flamespanSieveHeavy")
  }
}
