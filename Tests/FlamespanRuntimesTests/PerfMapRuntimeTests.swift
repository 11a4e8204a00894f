import FlamespanModel
import FlamespanProcess
import FlamespanRuntimes
import FlamespanTestSupport
import Foundation
import Testing

@Suite struct PerfMapRuntimeTests {
  @Test func readsTheNamespacePIDOfOurOwnProcess() throws {
    let pid = getpid()
    #expect(ProcFiles.namespacePID(of: pid) == pid)
    #expect(ProcFiles.namespacePID(status: "Name:\tnode\nNSpid:\t4242\t17\nNSsid:\t1\n") == 17)
    #expect(ProcFiles.namespacePID(status: "Name:\tnode\nNSpid:\t4242\n") == 4242)
    #expect(ProcFiles.namespacePID(status: "Name:\told-kernel\n") == nil)
    #expect(
      ProcFiles.perfMapPath(pid: 4242, namespacePID: 17) == "/proc/4242/root/tmp/perf-17.map")
    #expect(ProcFiles.namespacePID(of: Int32.max) == nil)
  }

  @Test func namesTheRuntimeByItsExecutable() {
    #expect(PerfMapNames.frameType(executableName: "node") == .v8JavaScript)
    #expect(PerfMapNames.frameType(executableName: "nodejs") == .v8JavaScript)
    #expect(PerfMapNames.frameType(executableName: "java") == .jvm)
    #expect(PerfMapNames.frameType(executableName: "dotnet") == .dotnet)
    #expect(PerfMapNames.frameType(executableName: "python3.12") == .cpython)
    #expect(PerfMapNames.frameType(executableName: "myapp") == .native)
    #expect(PerfMapNames.frameType(executableName: nil) == .native)
  }

  @Test func turnsMapNamesIntoFrames() {
    let v8 = PerfMapNames.frame(name: "JS:*burnSlow /tmp/app.js:3:18", frameType: .v8JavaScript)
    #expect(v8 == SourceFrame(function: "burnSlow", file: "/tmp/app.js", line: 3, column: 18))
    let old = PerfMapNames.frame(
      name: "LazyCompile:~burn slowly /path/my app.js:3", frameType: .v8JavaScript)
    #expect(old == SourceFrame(function: "burn slowly /path/my", file: "app.js", line: 3))
    let anonymous = PerfMapNames.frame(
      name: "JS:~ node:internal/main/run_main_module:1:1", frameType: .v8JavaScript)
    #expect(
      anonymous
        == SourceFrame(
          function: "(anonymous)", file: "node:internal/main/run_main_module", line: 1, column: 1))
    let getter = PerfMapNames.frame(name: "Function:^get size", frameType: .v8JavaScript)
    #expect(getter == SourceFrame(function: "get size"))
    #expect(
      PerfMapNames.frame(name: "Builtin:RecordWriteSaveFP", frameType: .v8JavaScript)
        == SourceFrame(function: "Builtin:RecordWriteSaveFP"))
    #expect(
      PerfMapNames.frame(name: "  Lcom/example/Foo;::bar ", frameType: .jvm)
        == SourceFrame(function: "Lcom/example/Foo;::bar"))
    #expect(
      PerfMapNames.frame(name: "double Hot.burn(int)", frameType: .jvm)
        == SourceFrame(function: "double Hot.burn(int)"))
    #expect(
      PerfMapNames.frame(name: "JS:kept as is", frameType: .jvm)
        == SourceFrame(function: "JS:kept as is"))
    #expect(
      PerfMapNames.frame(name: "py::burn:/tmp/x.py", frameType: .cpython)
        == SourceFrame(function: "burn", file: "/tmp/x.py"))
  }

  /// Our own process, given a map: attach finds it through /proc/PID/root, owns anonymous code and
  /// mapped names, symbolizes and steps by frame pointers.
  @Test func attachesOwnsSymbolizesAndSteps() throws {
    let pid = getpid()
    let path = "/tmp/perf-\(pid).map"
    #expect(!FileManager.default.fileExists(atPath: path), "a stale map of our pid is in the way")
    let runtime = PerfMapRuntime()
    let maps = ProcessMaps(pid: pid, mappings: [])
    #expect(runtime.attach(pid: pid, maps: maps) == nil)
    try Data("7f0000001000 100 JS:*hot /srv/app.js:7:3\n7f0000002000 10 bad\nnonsense\n".utf8)
      .write(to: URL(fileURLWithPath: path))
    defer { try? FileManager.default.removeItem(atPath: path) }

    let process = try #require(runtime.attach(pid: pid, maps: maps) as? PerfMapProcess)
    #expect(process.runtimeName == "perf-map")
    #expect(process.counters == PerfMapCounters(entries: 2, badLines: 1, droppedEntries: 0))
    #expect(runtime.attach(pid: pid, maps: maps) === process)

    let anonymous = Mapping(
      start: 0x7f00_0000_0000, limit: 0x7f00_0001_0000, fileOffset: 0, path: "[anon]",
      kind: .anonymous)
    let file = Mapping(
      start: 0x40_0000, limit: 0x50_0000, fileOffset: 0, path: "/usr/bin/x", kind: .file)
    #expect(process.owns(pc: 0x7f00_0000_9000, mapping: anonymous))
    // Outside every known mapping, only what the map names: a bad frame pointer's return address is
    // not JIT code.
    #expect(!process.owns(pc: 0x7f00_0000_9000, mapping: nil))
    #expect(process.owns(pc: 0x7f00_0000_1010, mapping: nil))
    #expect(!process.owns(pc: 0x40_1000, mapping: file))
    #expect(process.owns(pc: 0x7f00_0000_1010, mapping: file))

    let symbol = try #require(process.symbolize(address: 0x7f00_0000_10ff, mapping: anonymous))
    #expect(symbol.isJIT)
    // Our executable is the test runner, not a known JIT.
    #expect(symbol.frameType == .native)
    // V8's tags are recognized whatever the executable: an embedder of V8 writes the same names.
    #expect(
      symbol.frames == [SourceFrame(function: "hot", file: "/srv/app.js", line: 7, column: 3)])
    #expect(process.symbolize(address: 0x7f00_0000_1100, mapping: anonymous) == nil)

    // Appended later: picked up by refresh.
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    try handle.seekToEnd()
    try handle.write(contentsOf: Data("7f0000003000 40 later\n".utf8))
    try handle.close()
    #expect(process.symbolize(address: 0x7f00_0000_3000, mapping: anonymous) == nil)
    process.refresh()
    #expect(
      process.symbolize(address: 0x7f00_0000_3000, mapping: anonymous)?.frames.first?.function
        == "later")

    // Gone (the process exited before the recording was resolved): attaching again keeps what was read.
    try FileManager.default.removeItem(atPath: path)
    let again = try #require(runtime.attach(pid: pid, maps: maps) as? PerfMapProcess)
    #expect(again === process)
    #expect(
      again.symbolize(address: 0x7f00_0000_3000, mapping: anonymous)?.frames.first?.function
        == "later")

    // Stepping: a chain is followed; without one, the reason depends on whether the map names the pc.
    let memory = StackMemory(
      start: 0x1000, bytes: FramePointerStepTests.words([0, 0, 0x1030, 0x4444, 0, 0, 0, 0]))
    let leaf = FrameRegisters(
      pc: 0x7f00_0000_1010, sp: 0x1000, bp: 0x1010, pcIsReturnAddress: false)
    #expect(
      process.step(leaf, memory: memory)
        == .caller(FrameRegisters(pc: 0x4444, sp: 0x1020, bp: 0x1030, pcIsReturnAddress: true)))
    let named = FrameRegisters(pc: 0x7f00_0000_1010, sp: 0x1000, bp: nil, pcIsReturnAddress: false)
    #expect(process.step(named, memory: memory) == .stop(.noCFI, detail: "no frame pointer chain"))
    let unnamed = FrameRegisters(
      pc: 0x7f00_0000_9000, sp: 0x1000, bp: nil, pcIsReturnAddress: false)
    #expect(
      process.step(unnamed, memory: memory)
        == .stop(.jitWithoutMap, detail: "no frame pointer chain"))
  }
}
