import FlamespanModel
import FlamespanProcess
import FlamespanTestSupport
import Foundation
import Testing

@testable import FlamespanRuntimes

/// The CPython plug-in on a real Debian python3.11 process (no BPF: the tests read the process as the
/// sampler would, through process_vm_readv).
@Suite(.requires(.root, .file(CPythonFixture.python)))
struct CPythonProcessTests {
  @Test func detectsTheStaticallyLinkedInterpreterAndItsLayout() throws {
    let fixture = try CPythonFixture()
    let runtime = CPythonRuntime()
    let python = try fixture.attach(runtime)
    #expect(python.binary.path == "/usr/bin/python3.11")
    #expect(python.versionDescription == "CPython 3.11.2")
    #expect(python.problems == nil)
    // Debian's python3.11 is not PIE: its symbols are at their link-time addresses.
    #expect(python.loadBias == 0)
    let layout = try #require(python.samplerLayout, "no layout: \(python.problems ?? "")")
    let check = try #require(python.threadStateCheck)
    // The main thread and the worker, each found through its own fs base.
    #expect(check.threadStatesChecked == 2)
    #expect(check.threadStatesConfirmed == 2)
    // Read off Debian's libc.so.6 (2.36), and equal to glibc's constants.
    #expect(check.decodedFromLibrary)
    #expect(python.decodedTSD == ThreadSpecificDataLayout.glibcX8664)
    #expect(layout.tsdDataOffset == 0x318)
    #expect(layout.tsdStride == 16)
    #expect(layout.tsdKeyLimit == 32)
    #expect(layout.threadStateCFrame == 56)
    #expect(layout.cframeCurrentFrame == 8)
    #expect(layout.threadStateCurrentFrame == nil)
    #expect(layout.frameCode == 32)
    #expect(layout.framePrevious == 48)
    #expect(layout.frameInstruction == 56)
    #expect(layout.frameOwner == 69)
    #expect(layout.frameIsEntry == 68)
    #expect(layout.codeStamp == 136)
    let runtimeSymbol = python.binary.symbols.runtime
    #expect(layout.tssAddress == runtimeSymbol.value + 592)
    // A second process of the same file does not parse it again.
    let examined = runtime.examinedFileCount
    _ = try fixture.attach(runtime)
    #expect(runtime.examinedFileCount == examined)
  }

  @Test func namesEveryInstructionOfEveryFunction() throws {
    let fixture = try CPythonFixture()
    let python = try fixture.attach()
    let layout = try #require(python.samplerLayout)
    let sampler = SamplerEmulation(memory: ProcessMemory(pid: fixture.pid), layout: layout)
    #expect(fixture.report.codes.count >= 15)
    var named = 0
    for code in fixture.report.codes {
      let stamp = try sampler.stamp(ofCode: code.id)
      for unit in 0..<code.units {
        let record = InterpreterFrameRecord(
          code: code.id, instruction: code.id + 184 + UInt64(unit * 2), stamp: stamp, owner: 0,
          isEntry: false)
        let frames = python.name(
          InterpreterStackRecord(threadState: 0, frames: [record], status: .complete))
        if unit < code.firstTraceable {
          #expect(frames.isEmpty, "\(code.qualname) unit \(unit) is in the prologue")
          continue
        }
        let frame = try #require(frames.first, "\(code.qualname) unit \(unit)")
        #expect(frames.count == 1)
        #expect(!frame.isUnknown, "\(code.qualname) unit \(unit)")
        #expect(frame.frame.function == code.qualname)
        #expect(frame.frame.file == code.file)
        #expect(
          frame.frame.line == (try code.expectedLine(unit: unit) ?? 0),
          "\(code.qualname) unit \(unit)")
        named += 1
      }
      // Just pushed: one code unit before the bytecode, incomplete as tracebacks see it.
      let pushed = InterpreterFrameRecord(
        code: code.id, instruction: code.id + 182, stamp: stamp, owner: 0, isEntry: false)
      #expect(
        python.name(InterpreterStackRecord(threadState: 0, frames: [pushed], status: .complete))
          .isEmpty)
    }
    #expect(named > 500)
    #expect(python.unknownFrames == 0)
    let names = Set(fixture.report.codes.map(\.qualname))
    // Compact strings of every kind: ASCII, UCS1, UCS2 names, and a UCS4 file name.
    #expect(
      names.isSuperset(of: [
        "größe", "計算", "Shape.area", "outer.<locals>.inner", "größe.<locals>.<listcomp>",
      ]))
    #expect(fixture.report.codes.contains { $0.file.hasSuffix("/hëlpers_𝔣.py") })
  }

  @Test func unknownFramesAreCountedNeverGuessed() throws {
    let fixture = try CPythonFixture()
    let python = try fixture.attach()
    let layout = try #require(python.samplerLayout)
    let sampler = SamplerEmulation(memory: ProcessMemory(pid: fixture.pid), layout: layout)
    let code = try #require(fixture.report.codes.first { $0.qualname == "Shape.area" })
    let stamp = try sampler.stamp(ofCode: code.id)
    let inside = code.id + 184 + UInt64(code.firstTraceable * 2)
    let records = [
      // Not mapped.
      InterpreterFrameRecord(code: 0x10, instruction: 0x20, stamp: 0, owner: 0, isEntry: false),
      // Mapped, but a str, not a code object.
      InterpreterFrameRecord(
        code: fixture.report.strID, instruction: fixture.report.strID + 200, stamp: 0, owner: 0,
        isEntry: false),
      // The code object changed since the sample (here: the sampler saw another stamp).
      InterpreterFrameRecord(
        code: code.id, instruction: inside, stamp: stamp ^ 0xffff_ffff, owner: 0, isEntry: false),
      // An instruction past the bytecode, and one between two code units.
      InterpreterFrameRecord(
        code: code.id, instruction: code.id + 184 + UInt64(code.units * 2), stamp: stamp,
        owner: 0, isEntry: false),
      InterpreterFrameRecord(
        code: code.id, instruction: inside + 1, stamp: stamp, owner: 0, isEntry: true),
      // Far below the bytecode: garbage, not a prologue.
      InterpreterFrameRecord(
        code: code.id, instruction: code.id, stamp: stamp, owner: 0, isEntry: false),
    ]
    let frames = python.name(
      InterpreterStackRecord(threadState: 0, frames: records, status: .complete))
    #expect(frames.count == records.count)
    #expect(frames.allSatisfy { $0.isUnknown && $0.frame.function == "[unknown Python frame]" })
    #expect(frames.allSatisfy { $0.frame.file == nil && $0.frame.line == 0 })
    #expect(frames.map(\.endsEvalGroup) == records.map(\.isEntry))
    #expect(python.unknownFrames == records.count)
    // The stamp that matches still names the frame: the mismatch was not cached as the code.
    let good = python.name(
      InterpreterStackRecord(
        threadState: 0,
        frames: [
          InterpreterFrameRecord(
            code: code.id, instruction: inside, stamp: stamp, owner: 0, isEntry: false)
        ], status: .complete))
    #expect(good.map(\.frame.function) == ["Shape.area"])
  }

  @Test func aLiveChainMatchesTracebackAndItsEvalGroups() throws {
    let fixture = try CPythonFixture()
    let python = try fixture.attach()
    let layout = try #require(python.samplerLayout)
    let memory = ProcessMemory(pid: fixture.pid)
    let sampler = SamplerEmulation(memory: memory, layout: layout)
    // The worker's thread state, found as the sampler finds it: its TSS slot through its fs base.
    let threadState = try #require(
      try threadStates(python, memory).first {
        (try? memory.readUInt32($0 + 160)) == UInt32(fixture.report.workerNativeID)
      })
    let key = try memory.readUInt32(layout.tssAddress + 4)
    let fsBase = try memory.readUInt64(threadState + 152)
    let slot = try memory.readUInt64(
      fsBase + UInt64(layout.tsdDataOffset) + UInt64(key) * UInt64(layout.tsdStride))
    #expect(slot == threadState)

    let records = try sampler.frames(threadState: threadState)
    let frames = python.name(
      InterpreterStackRecord(threadState: threadState, frames: records, status: .complete))
    let expected = Array(fixture.report.stack.reversed())
    #expect(frames.map(\.frame.function) == expected.map(\.qualname))
    #expect(frames.map(\.frame.file) == expected.map(\.file))
    #expect(frames.map(\.frame.line) == expected.map(\.line))
    #expect(zip(frames, expected).allSatisfy { $0.frame.function.hasSuffix($1.name) })
    #expect(fixture.report.stack.map(\.name).suffix(3) == ["worker", "g", "h"])
    // One group per C-level call of the eval loop: g (called by map), worker (called through
    // CALL_FUNCTION_EX, which 3.11 does not inline) and the thread's bootstrap (called from C).
    let groupEnds = frames.filter(\.endsEvalGroup).map(\.frame.function)
    #expect(groupEnds == ["g", "worker", "Thread._bootstrap"])
    #expect(python.unknownFrames == 0)
  }

  @Test(.requires(.tool("cc"), .file("/usr/bin/python3.11-config")))
  func detectsLibpythonInAnEmbeddingProgram() throws {
    let fixture = try CPythonFixture(embedded: true)
    let python = try fixture.attach()
    #expect(python.binary.path == "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0")
    #expect(python.versionDescription == "CPython 3.11.2")
    #expect(python.loadBias != 0)
    let layout = try #require(python.samplerLayout, "no layout: \(python.problems ?? "")")
    #expect(layout.tssAddress == python.loadBias + python.binary.symbols.runtime.value + 592)
    #expect(python.threadStateCheck?.threadStatesConfirmed == 2)
    let evalFrame = try #require(python.binary.symbols.evalFrame)
    #expect(python.isEvalLoop(address: python.address(of: evalFrame) + 1, mapping: nil))
    #expect(!python.isEvalLoop(address: evalFrame.value, mapping: nil))

    let sampler = SamplerEmulation(memory: ProcessMemory(pid: fixture.pid), layout: layout)
    let threadState = try #require(
      try threadStates(python, ProcessMemory(pid: fixture.pid)).first {
        (try? ProcessMemory(pid: fixture.pid).readUInt32($0 + 160))
          == UInt32(fixture.report.workerNativeID)
      })
    let frames = python.name(
      InterpreterStackRecord(
        threadState: threadState, frames: try sampler.frames(threadState: threadState),
        status: .complete))
    let expected = Array(fixture.report.stack.reversed())
    #expect(frames.map(\.frame.function) == expected.map(\.qualname))
    #expect(frames.map(\.frame.line) == expected.map(\.line))
  }

  @Test(.requires(.tool("cc"), .file("/usr/bin/python3.11-config")))
  func theLayoutWaitsForTheInterpreterToBeInitialized() throws {
    let gate = try TemporaryDirectory("cpython-gate")
    let fixture = try CPythonFixture(embedded: true, startGate: gate.file("start"))
    let attachedEarly = try #require(fixture.beforeStart)
    // Attached before Py_Initialize: the TSS key was not created yet (is_initialized 0).
    #expect(attachedEarly.versionDescription == "CPython 3.11.2")
    #expect(fixture.layoutBeforeStart == nil)
    #expect(attachedEarly.problems == nil)
    // The report line came after Py_Initialize; the next refresh finds the layout.
    attachedEarly.refresh()
    let layout = try #require(attachedEarly.samplerLayout, "\(attachedEarly.problems ?? "")")
    #expect(layout == (try fixture.attach()).samplerLayout)
  }

  /// 3.12+ marks where one native call of the eval loop starts with a shim frame (owner
  /// FRAME_OWNED_BY_CSTACK) rather than with 3.11's is_entry: the shim is dropped and the frame inside it
  /// ends the group. Applied here to 3.11's code objects with 3.12's rule.
  @Test func shimFramesEndEvalGroupsAndAreDropped() throws {
    let fixture = try CPythonFixture()
    let attached = try fixture.attach()
    var offsets = try #require(attached.resolvedOffsets)
    offsets.shimFrameOwner = 3
    let python = CPythonProcess(
      pid: fixture.pid, binary: attached.binary, loadBias: attached.loadBias, codeCacheCapacity: 2,
      offsets: offsets)
    let sampler = SamplerEmulation(
      memory: ProcessMemory(pid: fixture.pid), layout: try #require(attached.samplerLayout))
    func frame(_ qualname: String) throws -> InterpreterFrameRecord {
      let code = try #require(fixture.report.codes.first { $0.qualname == qualname })
      return InterpreterFrameRecord(
        code: code.id, instruction: code.id + 184 + UInt64(code.firstTraceable * 2),
        stamp: try sampler.stamp(ofCode: code.id), owner: 0, isEntry: false)
    }
    // A shim's code is never read: garbage there must not matter.
    let shim = InterpreterFrameRecord(
      code: 0x10, instruction: 0, stamp: 0, owner: 3, isEntry: false)
    let frames = python.name(
      InterpreterStackRecord(
        threadState: 0,
        frames: [try frame("h"), try frame("g"), shim, try frame("worker"), shim, try frame("h")],
        status: .complete))
    #expect(frames.map(\.frame.function) == ["h", "g", "worker", "h"])
    #expect(frames.map(\.endsEvalGroup) == [false, true, true, false])
    #expect(python.unknownFrames == 0)
    // More code objects than the cache holds: each is read again, and named the same.
    let again = python.name(
      InterpreterStackRecord(
        threadState: 0, frames: [try frame("g"), try frame("Shape.area"), try frame("h")],
        status: .complete))
    #expect(again.map(\.frame.function) == ["g", "Shape.area", "h"])
  }

  @Test func otherProcessesAreNotPython() throws {
    let runtime = CPythonRuntime()
    // This test process: Swift, libc, libdw and the rest, none of which defines _PyRuntime.
    let maps = try ProcessInspector.readMaps(pid: getpid())
    #expect(runtime.attach(pid: getpid(), maps: maps) == nil)
    #expect(runtime.examinedFileCount > 3)
  }

  private func threadStates(_ python: CPythonProcess, _ memory: ProcessMemory) throws -> [UInt64] {
    let runtime = python.address(of: python.binary.symbols.runtime)
    let interpreter = try memory.readUInt64(runtime + 40)
    var threadState = try memory.readUInt64(interpreter + 16)
    var found: [UInt64] = []
    while threadState != 0, found.count < 100 {
      found.append(threadState)
      threadState = try memory.readUInt64(threadState + 8)
    }
    return found
  }
}
