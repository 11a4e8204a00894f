import FlamespanModel
import Testing

@testable import FlamespanRecorder

/// How Python frames take the place of the eval-loop frames that ran them: group k (from the leaf) goes
/// where the k-th eval-loop frame was; groups left over when the native stack stopped early go at the
/// root end; eval-loop frames left over (a truncated Python chain) stay native.
@Suite struct InterpreterSpliceTests {
  static func native(_ name: String) -> ResolvedLocation {
    ResolvedLocation(address: 0x1000, mapping: nil, frames: [SourceFrame(function: name)])
  }
  static func python(_ name: String, endsGroup: Bool) -> InterpreterFrame {
    InterpreterFrame(
      frame: SourceFrame(function: name, file: "/srv/app.py", line: 3), endsEvalGroup: endsGroup)
  }
  static func names(_ stack: [ResolvedLocation]) -> [String] {
    stack.map { $0.frames.first?.function ?? "?" }
  }

  /// sha256 (C) called from Python `digest`, run by the inner eval loop, which a C call made from
  /// `handler`, run by the outer eval loop under main.
  static let user = [
    native("SHA256_Update"), native("_hashlib_digest"), native("_PyEval_EvalFrameDefault"),
    native("method_vectorcall"), native("_PyEval_EvalFrameDefault"), native("main"),
  ]

  @Test func eachGroupReplacesItsEvalLoopFrame() {
    let splice = InterpreterSplice(
      evalLoopIndices: [2, 4],
      groups: [
        [Self.python("digest", endsGroup: true)],
        [Self.python("handler", endsGroup: false), Self.python("<module>", endsGroup: true)],
      ])
    let merged = splice.merged(into: Self.user)
    #expect(
      Self.names(merged) == [
        "SHA256_Update", "_hashlib_digest", "digest", "method_vectorcall", "handler", "<module>",
        "main",
      ])
    #expect(merged[2].frameType == .cpython)
    #expect(merged[2].mapping == nil)
    #expect(merged[0].frameType == nil)
  }

  @Test func groupsBeyondTheNativeStackGoAtTheRoot() {
    let splice = InterpreterSplice(
      evalLoopIndices: [2],
      groups: [
        [Self.python("digest", endsGroup: true)], [Self.python("<module>", endsGroup: true)],
      ])
    let truncated = Array(Self.user.prefix(3))
    #expect(
      Self.names(splice.merged(into: truncated)) == [
        "SHA256_Update", "_hashlib_digest", "digest", "<module>",
      ])
  }

  @Test func evalLoopsWithoutAGroupStayNative() {
    let splice = InterpreterSplice(
      evalLoopIndices: [2, 4], groups: [[Self.python("digest", endsGroup: true)]])
    #expect(
      Self.names(splice.merged(into: Self.user)) == [
        "SHA256_Update", "_hashlib_digest", "digest", "method_vectorcall",
        "_PyEval_EvalFrameDefault", "main",
      ])
  }

  @Test func unknownFramesSayWhy() {
    let unknown = InterpreterFrame(
      frame: SourceFrame(function: "[unknown Python frame]"), endsEvalGroup: true, isUnknown: true)
    let location = InterpreterSplice.location(unknown)
    #expect(location.unknownReason == "[unknown Python frame]")
    #expect(location.displayName == "[unknown Python frame]")
  }
}
