import FlamespanTestSupport
import Foundation
import Testing

/// The L7 tracer's C, compiled for the host with the toolchain's clang under AddressSanitizer and UBSan,
/// and run over the cases of bpf/host/:
/// - l7_head_test.c: the request-head parser (bpf/l7_head.h): a head split at every offset and read one
///   byte at a time; pipelines of 1, 2 and 100; heads of 800, 1,500, 6,000 and 9,000 bytes (the bound is
///   8 KiB); request bodies between pipelined requests; malformed and cut input;
/// - l7_response_scan_test.c: the response scan (bpf/l7/http_scan.h): status lines, every framing, a
///   response split at every offset, heads about SCAN_BYTES long, writev, last chunks, client request
///   lines, and 50,000 random heads;
/// - l7_traceparent_test.c: traceparent values (parse_traceparent): every byte made invalid, every cut,
///   every offset of the step buffer, and 200,000 random mutations against the W3C rules.
@Suite struct L7HostTests {
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

  @Test(arguments: ["l7_head_test", "l7_response_scan_test", "l7_traceparent_test"])
  func theKernelsCPassesItsHostCases(program: String) throws {
    let clang = try #require(
      Self.clang, "no clang: the Swift toolchain ships one (or set BPF_CLANG)")
    let root = TestEnvironment.packageRoot
    let binary = try TestEnvironment.temporaryDirectory("l7host").appendingPathComponent(program)
    let compiled = try Run.command([
      clang, "-O1", "-g", "-Wall", "-Werror", "-D_GNU_SOURCE",
      "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
      // The tracer copies request lines a word at a time to fields that are not 8-byte aligned, which
      // BPF on x86-64 (and x86-64 itself) does without a fault.
      "-fno-sanitize=alignment",
      "-I", root.appendingPathComponent("Sources/CFlamespanABI/include").path,
      "-I", root.appendingPathComponent("bpf").path,
      root.appendingPathComponent("bpf/host/\(program).c").path, "-o", binary.path,
    ])
    try #require(compiled.status == 0, "clang failed: \(compiled.stderr)")
    let result = try Run.command([binary.path])
    print(result.stdout)
    #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
    #expect(result.stdout.contains(", 0 failed"), "\(result.stdout)")
    #expect(!result.stdout.contains("FAIL"))
  }
}
