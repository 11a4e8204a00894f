import FlamespanExport
import FlamespanModel
import FlamespanOTLP
import Testing

/// Python frames have no native address or mapping: each is its function, file and line. Two of them (and
/// two marker frames) must stay apart in every export, where a table keyed by address alone would fold
/// them into whichever came first.
@Suite struct InterpreterFrameExportTests {
  static let python = Mapping(
    start: 0x40_0000, limit: 0x80_0000, fileOffset: 0, path: "/usr/bin/python3.11", kind: .file)
  static let evalLoop = ResolvedLocation(
    address: 0x52_b200, mapping: python,
    frames: [SourceFrame(function: "_PyEval_EvalFrameDefault", file: "Python/ceval.c", line: 5000)])
  static func pythonFrame(_ function: String, _ file: String, _ line: Int) -> ResolvedLocation {
    ResolvedLocation(
      address: 0, mapping: nil, frames: [SourceFrame(function: function, file: file, line: line)],
      frameType: .cpython)
  }
  static let handler = pythonFrame("Handler.do_GET", "/srv/app.py", 31)
  static let hashLoop = pythonFrame("hash_loop", "/srv/lib.py", 12)
  static let hashLoopOtherLine = pythonFrame("hash_loop", "/srv/lib.py", 14)
  static func marker(_ text: String) -> ResolvedLocation {
    ResolvedLocation(
      address: 0, mapping: nil, frames: [SourceFrame(function: text)], unknownReason: text)
  }

  static func profile() -> Profile {
    Profile(
      samples: [
        ProfileSample(
          stack: [hashLoop, handler, evalLoop], pid: 7, tid: 7, threadName: "python3", count: 5),
        ProfileSample(
          stack: [
            hashLoopOtherLine, handler, marker("[user stack truncated: deeper than the copy]"),
          ],
          pid: 7, tid: 8, threadName: "python3", count: 3),
        ProfileSample(
          stack: [marker("[no stack]")], pid: 7, tid: 9, threadName: "python3", count: 1),
      ], periodNanos: 10_101_010, startTimeNanos: 1, durationNanos: 2)
  }

  @Test func pprofKeepsEachPythonFrameAndMarkerApart() throws {
    let decoded = try PprofDecoder.decode(PprofEncoder.encode(Self.profile()))
    let stacks = decoded.samples.sorted { $0.count > $1.count }.map { $0.stack.map(\.frames) }
    #expect(stacks.count == 3)
    #expect(stacks[0].first == [SourceFrame(function: "hash_loop", file: "/srv/lib.py", line: 12)])
    #expect(stacks[1].first == [SourceFrame(function: "hash_loop", file: "/srv/lib.py", line: 14)])
    #expect(
      stacks[0][1] == [SourceFrame(function: "Handler.do_GET", file: "/srv/app.py", line: 31)])
    #expect(stacks[1].last?.first?.function == "[user stack truncated: deeper than the copy]")
    #expect(stacks[2].first?.first?.function == "[no stack]")
  }

  @Test func otlpMarksPythonFramesAsCPython() throws {
    let decoded = try OTLPProfileDecoder.decode(
      try OTLPProfileEncoder.encode(Self.profile(), resource: .local()))
    let locations = decoded.samples.flatMap(\.stack)
    let lines = Set(
      locations.filter { $0.frames.first?.function == "hash_loop" }.compactMap {
        $0.frames.first?.line
      })
    #expect(lines == [12, 14])
    for location in locations where location.frames.first?.file?.hasPrefix("/srv/") == true {
      #expect(location.frameType == .cpython, "\(location)")
    }
    let native = try #require(
      locations.first { $0.frames.first?.function == "_PyEval_EvalFrameDefault" })
    #expect(native.frameType == nil)
  }

  @Test func foldedShowsPythonFramesInPlace() {
    let text = FoldedStacks.render(Self.profile())
    #expect(
      text.contains("python3;_PyEval_EvalFrameDefault;Handler.do_GET;hash_loop 5\n"), "\(text)")
  }
}
