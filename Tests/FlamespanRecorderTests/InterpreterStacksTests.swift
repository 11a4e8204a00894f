import FlamespanBPF
import FlamespanModel
import FlamespanProcess
import FlamespanRuntimes
import Testing

@testable import FlamespanRecorder

/// The recorder's side of interpreter frames, with a plug-in view whose answers the test sets: when a
/// layout is published (and not again), how samples are counted, and where the named frames go.
@Suite struct InterpreterStacksTests {
  /// An interpreter whose eval loop is the code at 0x1000..<0x2000 and whose frames are named by code
  /// address.
  final class FakeInterpreter: InterpreterRuntimeProcess {
    var layout: CPythonWalkLayout?
    var refreshes = 0
    var unknownFrames = 0
    var runtimeName: String { "fake" }
    var versionDescription: String { "CPython 3.11.2" }
    var samplerLayout: CPythonWalkLayout? { layout }
    func refresh() { refreshes += 1 }
    func owns(pc: UInt64, mapping: Mapping?) -> Bool { false }
    func step(_ frame: FrameRegisters, memory: StackMemory) -> RuntimeStep { .outermost }
    func symbolize(address: UInt64, mapping: Mapping?) -> RuntimeSymbol? { nil }
    func isEvalLoop(address: UInt64, mapping: Mapping?) -> Bool {
      (0x1000..<0x2000).contains(address)
    }
    func name(_ stack: InterpreterStackRecord) -> [InterpreterFrame] {
      stack.frames.map { record in
        if record.code == 0 {
          unknownFrames += 1
          return InterpreterFrame(
            frame: SourceFrame(function: "[unknown Python frame]"), endsEvalGroup: record.isEntry,
            isUnknown: true)
        }
        return InterpreterFrame(
          frame: SourceFrame(function: "f\(record.code)", file: "/srv/app.py", line: 1),
          endsEvalGroup: record.isEntry)
      }
    }
  }

  static let layout = CPythonWalkLayout(
    tssAddress: 0x7000, tsdDataOffset: 0x318, tsdStride: 16, tsdKeyLimit: 32, threadStateCFrame: 56,
    cframeCurrentFrame: 8, threadStateCurrentFrame: nil, frameCode: 32, framePrevious: 48,
    frameInstruction: 56, frameOwner: 69, frameIsEntry: 68, codeStamp: 136)
  static let maps = ProcessMaps(pid: 7, mappings: [])

  static func sample(_ codes: [(UInt64, Bool)]?) -> RawSample {
    RawSample(
      pid: 7, tid: 7, cpu: 0, timeNanos: 1_000_000_000, threadName: "python3", kernelStack: [],
      userStack: [],
      interpreterStack: codes.map { codes in
        InterpreterStackRecord(
          threadState: 0x9000,
          frames: codes.map {
            InterpreterFrameRecord(code: $0.0, instruction: 0, stamp: 0, owner: 0, isEntry: $0.1)
          }, status: .complete)
      })
  }

  /// Native stack, leaf first: C code, the inner eval loop, a call, the outer eval loop, main.
  static let userStack: [UInt64] = [0x5000, 0x1100, 0x3000, 0x1200, 0x4000]

  @Test func publishesOnceAndSplicesEachGroupIntoItsEvalLoop() {
    var published: [(Int32, CPythonWalkLayout?)] = []
    var stacks = InterpreterStacks(publisher: { pid, layout in
      published.append((pid, layout))
      return nil
    })
    let view = FakeInterpreter()
    view.layout = Self.layout
    for _ in 0..<3 {
      let splice = stacks.splice(
        Self.sample([(1, true), (2, false), (3, true)]), userStack: Self.userStack, maps: Self.maps,
        views: [view])
      #expect(splice?.evalLoopIndices == [1, 3])
      #expect(splice?.groups.map { $0.map(\.frame.function) } == [["f1"], ["f2", "f3"]])
    }
    #expect(published.count == 1)
    #expect(published.first?.0 == 7)
    let summary = stacks.processes[7]
    #expect(summary?.walked == true)
    #expect(summary?.samplesInEvalLoop == 3)
    #expect(summary?.evalLoopSamplesWithoutFrames == 0)

    stacks.forget(pid: 7)
    #expect(published.count == 2)
    #expect(published.last?.1 == nil, "an exited process's layout is withdrawn")
  }

  @Test func aRefusedLayoutIsNotOfferedAtEverySample() {
    var attempts = 0
    var stacks = InterpreterStacks(publisher: { _, _ in
      attempts += 1
      return "its frames are not walked: the map is full"
    })
    let view = FakeInterpreter()
    view.layout = Self.layout
    for _ in 0..<5 {
      _ = stacks.splice(Self.sample(nil), userStack: Self.userStack, maps: Self.maps, views: [view])
    }
    #expect(attempts == 1)
    #expect(stacks.processes[7]?.walked == false)
    #expect(stacks.processes[7]?.problem == "its frames are not walked: the map is full")
    #expect(stacks.processes[7]?.evalLoopSamplesWithoutFrames == 5)
  }

  @Test func aViewWithoutLayoutIsRefreshedAtOnceThenRateLimited() {
    var stacks = InterpreterStacks(publisher: { _, _ in nil })
    let view = FakeInterpreter()
    _ = stacks.splice(Self.sample(nil), userStack: [], maps: Self.maps, views: [view])
    _ = stacks.splice(Self.sample(nil), userStack: [], maps: Self.maps, views: [view])
    #expect(
      view.refreshes == 1, "the second sample, at the same time, is within the retry interval")
    let fresh = FakeInterpreter()
    _ = stacks.splice(Self.sample(nil), userStack: [], maps: Self.maps, views: [fresh])
    #expect(fresh.refreshes == 1, "a view the registry attached anew is refreshed at once")
  }

  @Test func unknownFramesAddUpAcrossViews() {
    var stacks = InterpreterStacks(publisher: { _, _ in nil })
    let first = FakeInterpreter()
    first.layout = Self.layout
    _ = stacks.splice(
      Self.sample([(0, true)]), userStack: Self.userStack, maps: Self.maps, views: [first])
    let second = FakeInterpreter()
    second.layout = Self.layout
    _ = stacks.splice(
      Self.sample([(0, true), (0, true)]), userStack: Self.userStack, maps: Self.maps,
      views: [second])
    #expect(stacks.processes[7]?.unknownFrames == 3)
    #expect(stacks.totalUnknownFrames == 3)
  }
}
