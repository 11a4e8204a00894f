import FlamespanModel
import FlamespanProcess
import FlamespanRuntimes
import FlamespanTestSupport
import Foundation
import Testing

/// A real JIT's map: node --perf-basic-prof running a hot function for a second, its map read through
/// the runtime the way the recorder does, while node still runs.
@Suite struct PerfMapNodeTests {
  static let script = """
    function burnSlow(n) {
      let s = 0;
      for (let i = 0; i < n; i++) { s += Math.sqrt(i) * (i % 7); }
      return s;
    }
    const end = Date.now() + 1000;
    let total = 0;
    while (Date.now() < end) { total += burnSlow(100000); }
    process.stdout.write("burned\\n");
    // A line on stdin compiles another hot function, appended to the map while the test follows it;
    // the process stays alive until stdin closes.
    function burnLater(n) {
      let s = 1;
      for (let i = 0; i < n; i++) { s = (s * 31 + i) % 1000003; }
      return s;
    }
    process.stdin.on("data", () => {
      const until = Date.now() + 400;
      while (Date.now() < until) { total += burnLater(100000); }
      process.stdout.write("later\\n");
    });
    process.stdin.on("end", () => process.exit(0));
    """

  @Test(.requires(.tool("node"))) func findsTheHotFunctionInNodesMap() throws {
    let node = try #require(TestEnvironment.which("node"))
    let directory = try TestEnvironment.temporaryDirectory("perfmap-node")
    defer { try? FileManager.default.removeItem(at: directory) }
    let scriptURL = directory.appendingPathComponent("hot.js")
    try Data(Self.script.utf8).write(to: scriptURL)

    let process = Process()
    process.executableURL = URL(fileURLWithPath: node)
    process.arguments = ["--perf-basic-prof", scriptURL.path]
    // V8 also writes an isolate log into its working directory: keep it in ours.
    process.currentDirectoryURL = directory
    let input = Pipe()
    let output = Pipe()
    process.standardInput = input
    process.standardOutput = output
    try process.run()
    let pid = process.processIdentifier
    let mapPath = "/tmp/perf-\(pid).map"
    defer {
      try? input.fileHandleForWriting.close()
      process.waitUntilExit()
      try? FileManager.default.removeItem(atPath: mapPath)
    }
    let line = output.fileHandleForReading.availableData
    #expect(String(decoding: line, as: UTF8.self).hasPrefix("burned"))

    let runtime = PerfMapRuntime()
    let attached = try #require(
      runtime.attach(pid: pid, maps: ProcessMaps(pid: pid, mappings: [])) as? PerfMapProcess)
    #expect(attached.frameType == .v8JavaScript)
    let counters = attached.counters
    #expect(counters.entries > 100)
    #expect(counters.badLines == 0)
    #expect(counters.droppedEntries == 0)

    // Find burnSlow's entries by text, then look each up through the runtime.
    let text = try String(contentsOfFile: mapPath, encoding: .utf8)
    let starts = text.split(separator: "\n").filter { $0.contains("burnSlow") }.compactMap {
      UInt64($0.split(separator: " ")[0], radix: 16)
    }
    #expect(!starts.isEmpty)
    var named = 0
    for start in starts {
      guard let symbol = attached.symbolize(address: start, mapping: nil) else { continue }
      #expect(symbol.isJIT)
      #expect(symbol.frameType == .v8JavaScript)
      if symbol.frames
        == [SourceFrame(function: "burnSlow", file: scriptURL.path, line: 1, column: 18)]
      {
        named += 1
      }
    }
    // Entries a later line superseded name something else; the newest of burnSlow's cannot have been.
    #expect(named >= 1)
    #expect(attached.owns(pc: starts.last!, mapping: nil))

    // The JIT appends while it runs; refresh reads just that and names the new function.
    let before = attached.perfMap.offset
    #expect(!text.contains("burnLater"))
    input.fileHandleForWriting.write(Data("go\n".utf8))
    let later = output.fileHandleForReading.availableData
    #expect(String(decoding: later, as: UTF8.self).hasPrefix("later"))
    attached.refresh()
    #expect(attached.perfMap.offset > before)
    #expect(attached.perfMap.restarts == 0)
    let grown = try String(contentsOfFile: mapPath, encoding: .utf8)
    let laterStart = try #require(
      grown.split(separator: "\n").last { $0.contains("burnLater") }.flatMap {
        UInt64($0.split(separator: " ")[0], radix: 16)
      })
    #expect(
      attached.symbolize(address: laterStart, mapping: nil)?.frames.first?.function == "burnLater")
  }
}
