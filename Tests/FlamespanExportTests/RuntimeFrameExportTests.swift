import FlamespanExport
import FlamespanModel
import FlamespanOTLP
import Testing

/// Frames named by runtime plug-ins: a JS function from a perf map (JIT code in anonymous memory) and a Go
/// function, under a native frame. Folded text marks the JIT frame; OTLP carries each frame's type.
@Suite struct RuntimeFrameExportTests {
  static let jitRegion = Mapping(
    start: 0x3000_0000, limit: 0x3010_0000, fileOffset: 0, path: "[anon]", kind: .anonymous)
  static let goBinary = Mapping(
    start: 0x40_0000, limit: 0x80_0000, fileOffset: 0, path: "/srv/api", kind: .file)
  static let jsFunction = ResolvedLocation(
    address: 0x3000_1234, mapping: jitRegion,
    frames: [SourceFrame(function: "burnSlow", file: "/srv/app.js", line: 12)],
    frameType: .v8JavaScript, isJIT: true)
  static let goFunction = ResolvedLocation(
    address: 0x40_1000, mapping: goBinary,
    frames: [SourceFrame(function: "main.burn", file: "/srv/main.go", line: 7)], frameType: .go)

  static func profile() -> Profile {
    Profile(
      samples: [
        ProfileSample(
          stack: [jsFunction, Fixture.libcStart], pid: 7, tid: 7, threadName: "node", count: 3),
        ProfileSample(stack: [goFunction], pid: 8, tid: 9, threadName: "api", count: 2),
      ], periodNanos: 10_101_010, startTimeNanos: 1, durationNanos: 2)
  }

  @Test func foldedMarksJITFramesOnly() {
    let text = FoldedStacks.render(Self.profile())
    #expect(text.contains("node;__libc_start_call_main;burnSlow [jit] 3\n"), "\(text)")
    #expect(text.contains("api;main.burn 2\n"), "\(text)")
  }

  @Test func otlpCarriesTheFrameTypeOfEachRuntime() throws {
    let bytes = try OTLPProfileEncoder.encode(Self.profile(), resource: .local())
    let decoded = try OTLPProfileDecoder.decode(bytes)
    let locations = decoded.samples.flatMap(\.stack)
    let js = try #require(locations.first { $0.frames.first?.function == "burnSlow" })
    #expect(js.frameType == .v8JavaScript)
    #expect(js.isJIT)
    let go = try #require(locations.first { $0.frames.first?.function == "main.burn" })
    #expect(go.frameType == .go)
    #expect(!go.isJIT)
    let libc = try #require(
      locations.first { $0.frames.first?.function == "__libc_start_call_main" })
    #expect(libc.frameType == nil)
    #expect(!libc.isJIT)
  }
}
