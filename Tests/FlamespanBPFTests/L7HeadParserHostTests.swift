import FlamespanTestSupport
import Foundation
import Testing

/// The L7 tracer's request-head parser (bpf/l7_head.h) compiled for the host with the toolchain's clang,
/// under AddressSanitizer and UBSan, and run over bpf/host/l7_head_test.c's cases: a head split at every
/// offset and read one byte at a time; pipelines of 1, 2 and 100; heads of 800, 1,500, 6,000 and 9,000
/// bytes (the bound is 8 KiB); request bodies between pipelined requests; malformed and cut input.
@Suite struct L7HeadParserHostTests {
  /// The clang that bpf/build.sh would use: $BPF_CLANG, clang on PATH, the Swift toolchain's.
  static var clang: String? {
    if let path = ProcessInfo.processInfo.environment["BPF_CLANG"], !path.isEmpty { return path }
    if let path = TestEnvironment.which("clang") { return path }
    for path in ["/opt/swift/usr/bin/clang", "/usr/bin/clang"]
    where FileManager.default.isExecutableFile(atPath: path) {
      return path
    }
    return nil
  }

  @Test func theKernelsHeadParserPassesItsHostCases() throws {
    let clang = try #require(
      Self.clang, "no clang: the Swift toolchain ships one (or set BPF_CLANG)")
    let root = TestEnvironment.packageRoot
    let binary = try TestEnvironment.temporaryDirectory("l7head").appendingPathComponent(
      "l7_head_test")
    let compiled = try Run.command([
      clang, "-O1", "-g", "-Wall", "-Werror", "-fsanitize=address,undefined",
      "-fno-sanitize-recover=undefined",
      "-I", root.appendingPathComponent("Sources/CFlamespanABI/include").path,
      "-I", root.appendingPathComponent("bpf").path,
      root.appendingPathComponent("bpf/host/l7_head_test.c").path, "-o", binary.path,
    ])
    try #require(compiled.status == 0, "clang failed: \(compiled.stderr)")
    let result = try Run.command([binary.path])
    print(result.stdout)
    #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
    #expect(result.stdout.contains(", 0 failed"), "\(result.stdout)")
    #expect(!result.stdout.contains("FAIL"))
  }
}
