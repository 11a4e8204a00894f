import FlamespanExport
import FlamespanModel
import FlamespanTestSupport
import Foundation

/// A profile whose shape is known exactly: an inline chain, a kernel frame, an unresolved [vdso] frame,
/// two threads and two spans, so every exporter has something specific to show.
enum Fixture {
  static let appBuildID = BuildID(hex: "0123456789abcdef0123456789abcdef01234567")!
  static let app = Mapping(
    start: 0x5555_5555_4000, limit: 0x5555_5556_0000, fileOffset: 0x1000,
    path: "/opt/demo/bin/demo-app",
    buildID: appBuildID, kind: .file, device: 0, inode: 0)
  static let libc = Mapping(
    start: 0x7f00_0000_0000, limit: 0x7f00_0010_0000, fileOffset: 0,
    path: "/usr/lib/x86_64-linux-gnu/libc.so.6",
    buildID: BuildID(hex: "aabbccdd"), kind: .file)
  static let vdso = Mapping(
    start: 0x7fff_f7fc_1000, limit: 0x7fff_f7fc_3000, fileOffset: 0, path: "[vdso]", kind: .vdso)

  static let kernelSyscall = ResolvedLocation(
    address: 0xffff_ffff_8100_0100, mapping: .kernel,
    frames: [SourceFrame(function: "do_syscall_64")])
  static let vdsoClock = ResolvedLocation(
    address: 0x7fff_f7fc_1a20, mapping: vdso, frames: [],
    unknownReason: "the vDSO has no symbol table here")
  /// `hot_function` with two levels inlined into it, innermost first as the symbolizer produces them.
  static let inlinedCall = ResolvedLocation(
    address: 0x5555_5555_5234, mapping: app,
    frames: [
      SourceFrame(function: "inlined_leaf", file: "/src/demo.c", line: 10, column: 5),
      SourceFrame(function: "inlined_middle", file: "/src/demo.c", line: 20),
      SourceFrame(
        function: "hot_function", systemName: "_Z12hot_functionv", file: "/src/demo.cc", line: 30),
    ])
  static let coldCall = ResolvedLocation(
    address: 0x5555_5555_5400, mapping: app,
    frames: [SourceFrame(function: "cold_function", file: "/src/demo.c", line: 40)])
  static let mainCall = ResolvedLocation(
    address: 0x5555_5555_5500, mapping: app,
    frames: [SourceFrame(function: "main", file: "/src/demo.c", line: 50)])
  static let libcStart = ResolvedLocation(
    address: 0x7f00_0000_2d90, mapping: libc,
    frames: [SourceFrame(function: "__libc_start_call_main")])

  static let checkoutTrace = SpanContext(
    traceID: HexCoding.decode("4bf92f3577b34da6a3ce929d0e0e4736")!,
    spanID: HexCoding.decode("00f067aa0ba902b7")!,
    name: "GET /checkout")
  static let searchTrace = SpanContext(
    traceID: HexCoding.decode("0af7651916cd43dd8448eb211c80319c")!,
    spanID: HexCoding.decode("b7ad6b7169203331")!,
    name: nil)

  static let hotStack = [kernelSyscall, vdsoClock, inlinedCall, mainCall, libcStart]
  static let coldStack = [coldCall, mainCall, libcStart]

  /// Counts: hot stack 30 (checkout span) + 5 (search span) on tid 101, cold stack 10 on tid 102.
  static func profile() -> Profile {
    Profile(
      samples: [
        ProfileSample(
          stack: hotStack, pid: 100, tid: 101, threadName: "demo-worker", span: checkoutTrace,
          count: 30),
        ProfileSample(
          stack: hotStack, pid: 100, tid: 101, threadName: "demo-worker", span: searchTrace,
          count: 5),
        ProfileSample(stack: coldStack, pid: 100, tid: 102, threadName: "demo-main", count: 10),
      ],
      periodNanos: 10_101_010, startTimeNanos: 1_700_000_000_000_000_000,
      durationNanos: 5_000_000_000,
      comments: ["lost samples: 0", "recorded by flamespan tests"])
  }
}

/// The pprof suites' way to reach external tools, kept until they move to `.requires(.tool(…))` and
/// `Run` (issue 21 rewrites those suites at the same time); both calls go to the shared helpers.
enum ExternalTool {
  static var isCI: Bool { TestEnvironment.isCI }

  /// The tool's path, or nil after printing why the test is skipped; the caller fails under CI.
  static func require(_ name: String, for test: String) -> String? {
    if let path = TestEnvironment.which(name) { return path }
    if !isCI { print("SKIPPED \(test): `\(name)` is not installed") }
    return nil
  }

  static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:])
    throws -> Run.Result
  {
    try Run.command([executable] + arguments, environment: environment)
  }
}

extension ResolvedLocation {
  /// The reason text is not part of pprof; compare locations without it.
  var withoutReason: ResolvedLocation {
    var copy = self
    copy.unknownReason = nil
    return copy
  }
}
