import FlamespanTestSupport
import Foundation
import Glibc
import Testing

/// Python frames (issue 18) as a user sees them: CPython 3.11 programs from samples/python/ under
/// `flamespan record`, checked in the pprof (read by `go tool pprof -raw`: function, file, line), the folded
/// stacks (names in place of the eval loop's native frame) and the OTLP output (frame type `cpython`).
/// Each figure is computed here and printed, whether it passes or not, with what was found instead.
/// Serialized: each wants the CPUs to itself.
@Suite(.serialized) struct PythonFramesTests {
  static let samples = TestEnvironment.sharedSamples
  /// More samples than the 99 Hz default, so that a 99.5 % goal rests on hundreds of them.
  static let frequency = 499
  static let recordSeconds = 8

  /// The chain of samples/python/chain_main.py, root first, down to inner (see samples/README.md).
  static let recursionDepth = 12
  static let chain: [(name: String, file: String)] =
    [
      ("<module>", "chain_main.py"), ("main", "chain_main.py"), ("outer", "chain_main.py"),
      ("middle", "chain_lib.py"),
    ] + Array(repeating: ("recurse", "chain_lib.py"), count: recursionDepth) + [
      ("inner", "chain_lib.py")
    ]
  static let chainLeaves: [(name: String, file: String)] = [
    ("spin_main", "chain_main.py"), ("spin_lib", "chain_lib.py"), ("hash_block", "chain_lib.py"),
  ]
  /// The chain's own names, from outer down: <module> and main are names other files use too (site.main
  /// at start-up).
  static let chainNames = Set(chain.dropFirst(2).map(\.name) + chainLeaves.map(\.name))

  func pythonSample(_ name: String) throws -> String {
    let path = try Self.samples.get().appendingPathComponent("python/\(name)").path
    guard FileManager.default.fileExists(atPath: path) else {
      throw TestFailure("\(name) was not copied by samples/Makefile")
    }
    return path
  }

  // MARK: - The chain workload

  /// A process started by `record -- /usr/bin/python3 chain_main.py N`.
  @Test(.requires(.bpf, .tool("go"), .file(PythonFrames.python), .pythonOTLP))
  func chainStartedUnderRecord() throws {
    let directory = try TemporaryDirectory("python-chain-launch")
    let stackJSON = directory.file("stack.json")
    let script = try pythonSample("chain_main.py")
    let recorder = try RecorderReadiness.start(
      [
        "-F", String(Self.frequency), "-o", directory.file("profile.pb.gz"), "-o",
        directory.file("profile.folded"), "-o", directory.file("profile.otlp.pb"), "--",
        PythonFrames.python, script, String(Self.recordSeconds), stackJSON,
      ], stderrFile: directory.url.appendingPathComponent("record.stderr"))
    let exited = RecorderReadiness.waitForExit(of: recorder, seconds: 120)
    if !exited { kill(recorder.processIdentifier, SIGKILL) }
    let stderr = RecorderReadiness.text(of: directory.url.appendingPathComponent("record.stderr"))
    try #require(exited && recorder.terminationStatus == 0, "record: \(stderr)")
    print("record's summary:\n\(stderr)")
    try checkChain(in: directory, stackJSON: stackJSON, label: "launched")
    try checkFrameTypes(directory.file("profile.otlp.pb"))
  }

  /// A process that was already running: `record --pid`.
  @Test(.requires(.bpf, .tool("go"), .file(PythonFrames.python)))
  func chainAlreadyRunning() throws {
    let directory = try TemporaryDirectory("python-chain-pid")
    let stackJSON = directory.file("stack.json")
    let script = try pythonSample("chain_main.py")
    let workload = try BackgroundProcess(
      [PythonFrames.python, script, "300", stackJSON], logs: directory.url, label: "workload")
    defer { workload.stop() }
    // The stack is written in the first work unit: the interpreter is then in the loop.
    let running = waitUntil(seconds: 30, every: 0.05) {
      FileManager.default.fileExists(atPath: stackJSON) || !workload.isRunning
    }
    try #require(
      running && workload.isRunning, "chain_main.py did not start: \(workload.stderr)")
    let recorder = try RecorderReadiness.start(
      [
        "--pid", String(workload.pid), "-d", "\(Self.recordSeconds)s", "-F",
        String(Self.frequency), "-o", directory.file("profile.pb.gz"), "-o",
        directory.file("profile.folded"),
      ], stderrFile: directory.url.appendingPathComponent("record.stderr"))
    let exited = RecorderReadiness.waitForExit(of: recorder, seconds: 120)
    if !exited { kill(recorder.processIdentifier, SIGKILL) }
    let stderr = RecorderReadiness.text(of: directory.url.appendingPathComponent("record.stderr"))
    try #require(exited && recorder.terminationStatus == 0, "record: \(stderr)")
    print("record's summary:\n\(stderr)")
    #expect(workload.isRunning, "the workload died while recorded: \(workload.stderr)")
    try checkChain(in: directory, stackJSON: stackJSON, label: "--pid")
  }

  /// Python's own view of the stack in inner: (name, file, line), root first.
  struct TracebackFrame: Decodable, Equatable {
    var name: String
    var file: String
    var line: Int
  }

  /// The workload's samples in `directory/profile.pb.gz` and `profile.folded` against the issue's goals.
  func checkChain(in directory: TemporaryDirectory, stackJSON: String, label: String) throws {
    let profile = try RawPprof.read(directory.file("profile.pb.gz"), home: directory)
    let traceback = try JSONDecoder().decode(
      [TracebackFrame].self, from: Data(contentsOf: URL(fileURLWithPath: stackJSON)))
    // <module>, main, outer, middle, recurse × 12, inner: Python's stack where inner reported it.
    try #require(
      traceback.map(\.name) == Self.chain.map(\.name),
      "traceback.extract_stack() in inner: \(traceback.map(\.name))")
    let files = Set(profile.samples.flatMap { $0.pythonFrames.map(\.file) })
    let extents = try PythonFrames.Extents(files: files)
    Self.expectNamesSurvivePprof(profile, label: label)

    var interpreter = 0
    var running = 0
    var unverifiable = 0
    var chainSelected = 0
    var chainInOrder = 0
    var hashSelected = 0
    var hashNative = 0
    var innerSelected = 0
    var matchingTraceback = 0
    var unknownFrames = 0
    var depths: [Int: Int] = [:]
    var misses: [String: Int] = [:]
    func miss(_ what: String, _ sample: RawPprof.Sample) {
      guard misses.count < 12 else { return }
      misses["\(what): " + Self.leafEnd(of: sample), default: 0] += sample.count
    }
    for sample in profile.samples {
      let python = sample.pythonFrames
      unknownFrames +=
        python.filter { $0.name == PythonFrames.unknownFrame }.count * sample.count
      if !python.isEmpty
        || sample.frames.contains(where: { $0.function == "_PyEval_EvalFrameDefault" })
      {
        interpreter += sample.count
        let verdict = python.last.map { extents.lineInside($0) } ?? false
        if verdict == nil { unverifiable += sample.count }
        if verdict != false { running += sample.count } else { miss("running function", sample) }
      }
      if python.contains(where: { Self.chainNames.contains($0.name) }) {
        chainSelected += sample.count
        if Self.isChainPrefix(python) {
          chainInOrder += sample.count
        } else {
          miss("chain", sample)
        }
      }
      if let innerIndex = python.firstIndex(where: { $0.name == "inner" }) {
        innerSelected += sample.count
        depths[python.filter { $0.name == "recurse" }.count, default: 0] += sample.count
        // Every frame above inner at the line Python reported; inner itself in its own file.
        let ours = python[..<innerIndex].map {
          TracebackFrame(name: $0.name, file: Self.canonical($0.file), line: $0.line)
        }
        let theirs = traceback.dropLast().map {
          TracebackFrame(name: $0.name, file: Self.canonical($0.file), line: $0.line)
        }
        if ours == theirs
          && Self.canonical(python[innerIndex].file) == Self.canonical(traceback.last!.file)
        {
          matchingTraceback += sample.count
        } else {
          miss("traceback", sample)
        }
      }
      if let leaf = python.last, leaf.name == "hash_block" {
        hashSelected += sample.count
        let leafIndex = sample.frames.lastIndex(of: leaf)!
        if sample.frames[(leafIndex + 1)...].contains(where: PythonFrames.isHashlibNative) {
          hashNative += sample.count
        } else {
          miss("native under hash_block", sample)
        }
      }
    }
    print(
      "\(label): \(profile.total) samples, \(unknownFrames) unknown Python frames, recursion depths \(depths)"
    )
    if unverifiable > 0 { print("\(label): \(unverifiable) samples in files that cannot be read") }
    for (stack, count) in misses.sorted(by: { $0.value > $1.value }) {
      print("\(label) miss ×\(count): \(stack)")
    }
    Self.expectShare(
      "\(label): interpreter samples naming the running function with a line inside it", running,
      of: interpreter, goal: 0.995, minimum: 200)
    Self.expectShare(
      "\(label): chain samples with the whole chain in order", chainInOrder, of: chainSelected,
      goal: 0.995, minimum: 200)
    Self.expectShare(
      "\(label): samples under inner matching traceback.extract_stack()", matchingTraceback,
      of: innerSelected, goal: 0.995, minimum: 150)
    Self.expectShare(
      "\(label): hash_block samples with _hashlib/OpenSSL frames below", hashNative,
      of: hashSelected, goal: 0.95, minimum: 40)
    #expect(
      depths.keys.allSatisfy { $0 == Self.recursionDepth },
      "\(label): recursion depths under inner \(depths), expected only \(Self.recursionDepth)")
    // Every function of the chain is named, in its file.
    var checked: Set<String> = []
    for (name, file) in Self.chain + Self.chainLeaves where checked.insert(name).inserted {
      let found = profile.samples.contains { sample in
        sample.pythonFrames.contains { $0.name == name && $0.file.hasSuffix("/" + file) }
      }
      #expect(found, "\(label): no frame names \(name) in \(file)")
    }
    try checkFolded(directory.file("profile.folded"), label: label)
  }

  /// The Python chain of `python` (root first) is a prefix of the expected chain, optionally ending in
  /// one of its hot leaves (or in report_stack and what it calls), each frame in its own file.
  static func isChainPrefix(_ python: [RawPprof.Frame]) -> Bool {
    for (index, frame) in python.enumerated() {
      if index < chain.count {
        guard frame.name == chain[index].name, frame.file.hasSuffix("/" + chain[index].file)
        else { return false }
      } else if index == chain.count {
        // The first unit's report_stack runs traceback's own frames below it.
        if frame.shortName == "report_stack" && frame.file.hasSuffix("/chain_main.py") {
          return true
        }
        guard
          chainLeaves.contains(where: {
            frame.name == $0.name && frame.file.hasSuffix("/" + $0.file)
          })
        else { return false }
      } else {
        return false
      }
    }
    return true
  }

  /// pprof's readers demangle a function's system_name when it equals its name, and their "simple" mode
  /// strips every `<…>` as C++ template arguments: a Python `<module>`, `<listcomp>` or `<lambda>` whose
  /// system_name is its name shows in `go tool pprof` with no name at all.
  static func expectNamesSurvivePprof(
    _ profile: RawPprof, label: String, sourceLocation: SourceLocation = #_sourceLocation
  ) {
    let emptied = Set(
      profile.samples.flatMap { $0.pythonFrames.filter(\.function.isEmpty).map(\.systemName) })
    #expect(
      emptied.isEmpty,
      "\(label): go tool pprof shows Python functions \(emptied.sorted()) with an empty name: pprof strips <…> from a system_name equal to the name; write no system_name (or another) for Python frames",
      sourceLocation: sourceLocation)
  }

  /// The leaf end of a sample's stack, where Python frames should be, for messages.
  static func leafEnd(of sample: RawPprof.Sample, frames count: Int = 14) -> String {
    let frames = sample.frames.map(\.description)
    return ((frames.count > count ? ["…"] : []) + frames.suffix(count)).joined(separator: ";")
  }

  static func canonical(_ path: String) -> String {
    URL(fileURLWithPath: path).resolvingSymlinksInPath().standardizedFileURL.path
  }

  /// Folded stacks have names only: the chain's frames must sit next to each other, root first (in place of
  /// the eval loop's native frame, not beside it), and OpenSSL's below hash_block.
  func checkFolded(_ path: String, label: String) throws {
    let folded = try FoldedProfile(contentsOf: URL(fileURLWithPath: path))
    let expected = Self.chain.map(\.name)
    var selected = 0
    var contiguous = 0
    var hashSelected = 0
    var hashNative = 0
    var example: String?
    for (frames, count) in folded.stacks {
      guard frames.contains(where: { Self.chainNames.contains($0) }) else { continue }
      selected += count
      // From <module> down, the frames are the chain's (as far as the sample went), then a leaf.
      if let start = frames.firstIndex(of: "<module>") {
        let tail = Array(frames[start...])
        let length = zip(tail, expected).prefix { $0 == $1 }.count
        let rest = tail.dropFirst(length)
        let beyondChain = rest.dropFirst().allSatisfy {
          !Self.chainNames.contains($0) && $0 != "<module>"
        }
        let leafOK: Bool
        if length < expected.count {
          leafOK = rest.allSatisfy { !Self.chainNames.contains($0) }
        } else if let leaf = rest.first, leaf.hasSuffix("report_stack") {
          leafOK = true  // traceback's own frames below it
        } else {
          leafOK =
            (rest.first.map { name in Self.chainLeaves.contains { $0.name == name } } ?? true)
            && beyondChain
        }
        if length >= 3 && leafOK {
          contiguous += count
        } else if example == nil {
          example = frames.joined(separator: ";")
        }
      } else if example == nil {
        example = frames.joined(separator: ";")
      }
      if let hash = frames.lastIndex(of: "hash_block") {
        hashSelected += count
        let below = frames[(hash + 1)...].map { $0.lowercased() }
        if below.contains(where: {
          $0.contains("sha256") || $0.contains("libcrypto") || $0.contains("_hashlib")
        }) {
          hashNative += count
        }
      }
    }
    if let example { print("\(label) folded, a stack without the chain in place: \(example)") }
    Self.expectShare(
      "\(label) folded: chain samples with the chain contiguous from <module>", contiguous,
      of: selected, goal: 0.995, minimum: 200)
    Self.expectShare(
      "\(label) folded: hash_block samples with native frames below", hashNative, of: hashSelected,
      goal: 0.95, minimum: 40)
  }

  /// The OTLP output marks Python locations `profile.frame.type` = `cpython`, and only those, read by the
  /// reference decoder (PyPI opentelemetry-proto).
  func checkFrameTypes(_ path: String) throws {
    let decoder = TestEnvironment.packageRoot.appendingPathComponent(
      "Tests/FlamespanOTLPTests/Python/decode_profile.py")
    let result = try Run.command(
      ["python3", decoder.path, path], environment: PythonOTLPDecoder.environment)
    #expect(result.status == 0, "decode_profile.py: \(result.stderr)")
    guard
      let document = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
        as? [String: Any]
    else {
      Issue.record("decode_profile.py printed no JSON: \(result.stdout.prefix(300))")
      return
    }
    var types: [String: Int] = [:]
    var wrong: [String] = []
    for resource in document["resource_profiles"] as? [[String: Any]] ?? [] {
      for scope in resource["scope_profiles"] as? [[String: Any]] ?? [] {
        for profile in scope["profiles"] as? [[String: Any]] ?? [] {
          for sample in profile["samples"] as? [[String: Any]] ?? [] {
            for location in sample["stack"] as? [[String: Any]] ?? [] {
              let type =
                (location["attributes"] as? [String: Any])?["profile.frame.type"] as? String
                ?? "none"
              let lines = location["lines"] as? [[String: Any]] ?? []
              let python = lines.contains {
                let file = $0["file"] as? String ?? ""
                return file.hasSuffix(".py") || file.hasPrefix("<frozen ")
                  || ($0["function"] as? String) == PythonFrames.unknownFrame
              }
              let key = (python ? "python:" : "other:") + type
              types[key, default: 0] += 1
              if python != (type == "cpython"), wrong.count < 5 {
                wrong.append(
                  "\(type): \(lines.map { "\($0["function"] ?? "?") \($0["file"] ?? "")" })")
              }
            }
          }
        }
      }
    }
    print("OTLP locations in samples, by kind and profile.frame.type: \(types)")
    #expect(types["python:cpython", default: 0] > 0, "no cpython locations in the OTLP output")
    #expect(wrong.isEmpty, "Python locations not typed cpython, or others typed cpython: \(wrong)")
  }

  // MARK: - http.server under load, with spans

  @Test(.requires(.bpf, .tool("go"), .tool("curl"), .tool("wrk"), .file(PythonFrames.python)))
  func httpServerTracedRequestShowsPythonFunctions() throws {
    let directory = try TemporaryDirectory("python-http")
    let server = try BackgroundProcess(
      [PythonFrames.python, try pythonSample("http_app.py"), "0"], logs: directory.url,
      label: "server")
    defer { server.stop() }
    let port = try #require(
      ReadyLine.port(in: server.stdoutFile, from: server.process),
      "http_app.py never printed its port: \(server.stdout) \(server.stderr)")
    let recording = try Recording(
      pid: server.pid, seconds: Self.recordSeconds, frequency: Self.frequency)
    let base = "http://127.0.0.1:\(port)"
    // Background load on two keep-alive connections while traced requests come on a third.
    let load = try BackgroundProcess(
      ["wrk", "-t1", "-c2", "-d\(Self.recordSeconds - 2)s", "\(base)/burn?n=2"],
      logs: directory.url,
      label: "wrk")
    defer { load.stop() }
    let traces = (0..<3).map { _ in RecordHTTPTests.randomHex(bytes: 16) }
    for trace in traces {
      let curl = try Run.command([
        "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H",
        "traceparent: 00-\(trace)-\(RecordHTTPTests.randomHex(bytes: 8))-01", "\(base)/burn?n=150",
      ])
      #expect(curl.stdout == "200", "curl: \(curl.stdout) \(curl.stderr)")
    }
    let finished = recording.finish()
    try #require(finished.status == 0, "record: \(finished.stderr)")
    let spans = try ExportedSpan.read(recording.spansPath)

    var tracedSamples = 0
    for trace in traces {
      #expect(
        spans.contains { $0.traceID == trace && $0.name == "GET /burn" }, "no span for \(trace)")
      let drilled = directory.file("trace-\(trace).pb.gz")
      let drilledFolded = directory.file("trace-\(trace).folded")
      let drill = try Run.command([
        TestEnvironment.flamespanBinary, "drill", "--trace", trace, recording.pprofPath.path, "-o",
        drilled,
        "-o", drilledFolded,
      ])
      try #require(drill.status == 0, "drill: \(drill.stderr)")
      let profile = try RawPprof.read(drilled, home: directory)
      tracedSamples += profile.total
      try checkTracedRequest(profile, folded: drilledFolded, trace: trace)
    }
    #expect(tracedSamples >= 60, "only \(tracedSamples) samples in the three traced requests")
  }

  /// One traced request's samples (from `drill --trace`): Python functions with their files and lines,
  /// the handler's chain in order, OpenSSL below hash_loop.
  func checkTracedRequest(_ profile: RawPprof, folded: String, trace: String) throws {
    let files = Set(profile.samples.flatMap { $0.pythonFrames.map(\.file) })
    let extents = try PythonFrames.Extents(files: files)
    Self.expectNamesSurvivePprof(profile, label: "trace \(trace)")
    // The request thread's chain below Thread.run, by the functions' own names.
    let requestChain = [
      "process_request_thread", "finish_request", "__init__", "handle", "handle_one_request",
      "do_GET",
      "handler",
    ]
    var named = 0
    var inHandler = 0
    var hashSelected = 0
    var hashNative = 0
    var seen: Set<String> = []
    var example: String?
    for sample in profile.samples {
      let python = sample.pythonFrames
      seen.formUnion(python.map(\.shortName))
      if let leaf = python.last, extents.lineInside(leaf) != false { named += sample.count }
      let names = python.map(\.shortName)
      if let start = names.firstIndex(of: "process_request_thread"),
        Array(names[start...].prefix(requestChain.count)) == requestChain,
        python.suffix(from: start + requestChain.count - 2).allSatisfy({
          $0.file.hasSuffix("/http_app.py")
        }),
        python.allSatisfy({ extents.lineInside($0) != false })
      {
        inHandler += sample.count
      } else if example == nil {
        example = Self.leafEnd(of: sample)
      }
      if python.last?.shortName == "hash_loop" {
        hashSelected += sample.count
        let index = sample.frames.lastIndex(of: python.last!)!
        if sample.frames[(index + 1)...].contains(where: PythonFrames.isHashlibNative) {
          hashNative += sample.count
        }
      }
    }
    if let example { print("trace \(trace): a sample outside the handler chain: \(example)") }
    print("trace \(trace): Python functions seen: \(seen.sorted())")
    Self.expectShare(
      "trace \(trace): samples naming the running Python function with a line inside it", named,
      of: profile.total, goal: 0.99, minimum: 20)
    Self.expectShare(
      "trace \(trace): samples in Thread.run → … → Handler.do_GET → handler, lines inside",
      inHandler, of: profile.total, goal: 0.95, minimum: 20)
    Self.expectShare(
      "trace \(trace): hash_loop samples with OpenSSL below", hashNative, of: hashSelected,
      goal: 0.95, minimum: 5)
    #expect(
      seen.contains("python_loop") && seen.contains("hash_loop"), "trace \(trace): \(seen.sorted())"
    )
    // The folded output of drill names them too, in place of the eval loop.
    let foldedProfile = try FoldedProfile(contentsOf: URL(fileURLWithPath: folded))
    let withHandler = foldedProfile.count { frames in
      frames.contains { $0.hasSuffix("do_GET") } && frames.contains("handler")
    }
    Self.expectShare(
      "trace \(trace) folded: samples naming do_GET and handler", withHandler,
      of: foldedProfile.total, goal: 0.95, minimum: 20)
  }

  // MARK: - Figures

  /// Prints the share, then expects at least `minimum` selected samples and at least `goal` of them.
  static func expectShare(
    _ what: String, _ satisfied: Int, of selected: Int, goal: Double, minimum: Int,
    sourceLocation: SourceLocation = #_sourceLocation
  ) {
    let percent = selected > 0 ? 100 * Double(satisfied) / Double(selected) : 0
    print(
      "\(what): \(satisfied) of \(selected) (\(String(format: "%.2f", percent))%, goal \(100 * goal)%)"
    )
    #expect(
      selected >= minimum, "\(what): only \(selected) samples", sourceLocation: sourceLocation)
    #expect(
      Double(satisfied) >= goal * Double(selected),
      "\(what): \(satisfied) of \(selected) = \(String(format: "%.2f", percent))%, goal \(100 * goal)%",
      sourceLocation: sourceLocation)
  }
}
