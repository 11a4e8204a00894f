import FlamespanModel
import Foundation

/// A profile with spans from several traces, built in code: two spans of one trace, a span name that
/// recurs in another trace, an unnamed span, and samples outside any span. Stacks mix an inline chain,
/// a kernel frame, an unresolved [vdso] frame and a deleted file, so every table of both formats is used.
public enum SpanProfileFixture {
  public static let app = Mapping(
    start: 0x5555_5555_4000, limit: 0x5555_5556_0000, fileOffset: 0x1000,
    path: "/srv/shop/bin/shop-server",
    buildID: BuildID(hex: "4fd2c3b1a0e9f8d7c6b5a4938271605f4e3d2c1b")!, kind: .file)
  public static let libc = Mapping(
    start: 0x7f00_0000_0000, limit: 0x7f00_0010_0000, fileOffset: 0,
    path: "/usr/lib/x86_64-linux-gnu/libc.so.6",
    buildID: BuildID(hex: "aabbccddeeff00112233445566778899aabbccdd")!, kind: .file)
  public static let plugin = Mapping(
    start: 0x7f10_0000_0000, limit: 0x7f10_0001_0000, fileOffset: 0x2000,
    path: "/srv/shop/lib/plugin.so", kind: .deletedFile)
  public static let vdso = Mapping(
    start: 0x7fff_f7fc_1000, limit: 0x7fff_f7fc_3000, fileOffset: 0, path: "[vdso]", kind: .vdso)

  public static let kernelWrite = ResolvedLocation(
    address: 0xffff_ffff_8123_4560, mapping: .kernel,
    frames: [SourceFrame(function: "tcp_sendmsg")])
  public static let vdsoClock = ResolvedLocation(
    address: 0x7fff_f7fc_1a20, mapping: vdso, frames: [], unknownReason: "no symbols")
  /// `render_page` with `escape_html` and `copy_bytes` inlined into it, innermost first.
  public static let renderInlined = ResolvedLocation(
    address: 0x5555_5555_6234, mapping: app,
    frames: [
      SourceFrame(function: "copy_bytes", file: "/src/shop/text.h", line: 12, column: 9),
      SourceFrame(function: "escape_html", file: "/src/shop/text.h", line: 40, column: 3),
      SourceFrame(
        function: "shop::render_page(Request const&)",
        systemName: "_ZN4shop11render_pageERK7Request",
        file: "/src/shop/render.cc", line: 88),
    ])
  public static let checkout = ResolvedLocation(
    address: 0x5555_5555_7000, mapping: app,
    frames: [SourceFrame(function: "handle_checkout", file: "/src/shop/checkout.c", line: 21)])
  public static let pluginHash = ResolvedLocation(
    address: 0x7f10_0000_0444, mapping: plugin,
    frames: [SourceFrame(function: "plugin_hash", file: "/src/plugin/hash.c", line: 7)])
  public static let serve = ResolvedLocation(
    address: 0x5555_5555_5500, mapping: app,
    frames: [SourceFrame(function: "serve_connection", file: "/src/shop/server.c", line: 101)])
  public static let threadStart = ResolvedLocation(
    address: 0x7f00_0000_9d90, mapping: libc, frames: [SourceFrame(function: "start_thread")])

  public static func span(_ trace: String, _ span: String, _ name: String?) -> SpanContext {
    SpanContext(traceID: HexCoding.decode(trace)!, spanID: HexCoding.decode(span)!, name: name)
  }
  public static let checkoutA = span(
    "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "POST /checkout")
  /// A client span inside trace A.
  public static let paymentA = span(
    "4bf92f3577b34da6a3ce929d0e0e4736", "53995c3f42cd8ad8", "POST /pay")
  public static let checkoutB = span(
    "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", "POST /checkout")
  public static let unnamedC = span("ffffffffffffffffffffffffffffffff", "0000000000000001", nil)

  public static let renderStack = [renderInlined, serve, threadStart]
  public static let checkoutStack = [kernelWrite, checkout, serve, threadStart]
  public static let pluginStack = [vdsoClock, pluginHash, checkout, serve, threadStart]

  public static func profile() -> Profile {
    func sample(_ stack: [ResolvedLocation], tid: Int32, _ span: SpanContext?, _ count: Int64)
      -> ProfileSample
    {
      ProfileSample(
        stack: stack, pid: 4242, tid: tid, threadName: "worker-\(tid)", span: span, count: count)
    }
    return Profile(
      samples: [
        sample(checkoutStack, tid: 4243, checkoutA, 40),
        sample(renderStack, tid: 4243, checkoutA, 25),
        sample(pluginStack, tid: 4243, paymentA, 12),
        sample(checkoutStack, tid: 4244, checkoutB, 17),
        sample(pluginStack, tid: 4244, checkoutB, 3),
        sample(renderStack, tid: 4245, unnamedC, 8),
        sample(renderStack, tid: 4245, nil, 6),
        sample(checkoutStack, tid: 4242, nil, 2),
      ],
      periodNanos: 10_101_010, startTimeNanos: 1_731_000_000_123_456_789,
      durationNanos: 2_500_000_000, comments: ["lost samples: 3", "fixture"])
  }
}

/// What a sample means, for comparing profiles that went through different encoders: everything the
/// model carries except how the tables happened to be laid out.
public struct SampleMeaning: Hashable, CustomStringConvertible {
  public var stack: [ResolvedLocation]
  public var pid: Int32
  public var tid: Int32
  public var threadName: String
  public var traceID: String?
  public var spanID: String?
  public var spanName: String?
  public var count: Int64

  public init(_ sample: ProfileSample) {
    // The reason text is the decoder's own; whether a location is unresolved is what must survive.
    stack = sample.stack.map { location in
      var normalized = location
      normalized.unknownReason = location.frames.isEmpty ? "unresolved" : nil
      return normalized
    }
    pid = sample.pid
    tid = sample.tid
    threadName = sample.threadName
    traceID = sample.span?.traceIDHex
    spanID = sample.span?.spanIDHex
    spanName = sample.span?.name
    count = sample.count
  }

  public var description: String {
    "\(stack.map(\.displayName)) pid \(pid) tid \(tid) \(traceID ?? "-")/\(spanID ?? "-") ×\(count)"
  }

  public static func of(_ profile: Profile) -> [SampleMeaning: Int64] {
    var result: [SampleMeaning: Int64] = [:]
    for sample in profile.samples { result[SampleMeaning(sample), default: 0] += 1 }
    return result
  }
}
