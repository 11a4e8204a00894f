import FlamespanModel

/// A deterministic generator of agent windows: a busy host's HTTP spans at a given rate, and CPU samples
/// at 19 Hz on its busy cores, most of them taken inside a span, over a fixed set of stacks.
struct GeneratedWindows {
  static let windowNanos: Int64 = 10_000_000_000
  static let period: Int64 = 1_000_000_000 / 19

  var spansPerSecond: Int
  /// Busy cores: 19 samples per second each.
  var busyCores: Int
  private var random: Random
  private let stacks: [[ResolvedLocation]]
  private let routes = (0..<40).map { "/api/v1/resource\($0)" }

  struct Random {
    var state: UInt64
    mutating func next() -> UInt64 {
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
    mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8(next() & 0xFF) } }
  }

  init(spansPerSecond: Int, busyCores: Int = 8, seed: UInt64 = 24) {
    self.spansPerSecond = spansPerSecond
    self.busyCores = busyCores
    random = Random(state: seed)
    // Three binaries with build ids, 600 functions, 3,000 distinct stacks 12 to 30 frames deep.
    var binaries: [Mapping] = []
    for index in 0..<3 {
      let base: UInt64 = 0x5555_0000_0000 + (UInt64(index) << 32)
      let buildID: [UInt8] = (0..<20).map { (byte: Int) -> UInt8 in UInt8((byte * 7 + index) & 0xFF)
      }
      binaries.append(
        Mapping(
          start: base, limit: base + (1 << 32), fileOffset: 0, path: "/usr/bin/service\(index)",
          buildID: BuildID(bytes: buildID), kind: .file))
    }
    var locations: [ResolvedLocation] = []
    for function in 0..<600 {
      let mapping = binaries[function % 3]
      locations.append(
        ResolvedLocation(
          address: mapping.start + 0x1000 + UInt64(function) * 0x40, mapping: mapping,
          frames: [
            SourceFrame(
              function: "service::module\(function / 20)::handler_\(function)",
              file: "src/module\(function / 20).rs", line: 10 + function)
          ]))
    }
    var generator = random
    stacks = (0..<3000).map { _ in
      (0..<(12 + generator.below(19))).map { _ in locations[generator.below(locations.count)] }
    }
    random = generator
  }

  /// The window that starts at `startNanos`: its profile, and its spans (each with its sample count).
  mutating func window(startNanos: Int64) -> (profile: Profile, spans: [HTTPSpan]) {
    let spanCount = spansPerSecond * Int(Self.windowNanos / 1_000_000_000)
    var spans: [HTTPSpan] = []
    spans.reserveCapacity(spanCount)
    for _ in 0..<spanCount {
      let duration = Int64(1_000_000 + random.below(40_000_000))
      let start = startNanos + Int64(random.below(Int(Self.windowNanos))) - duration
      let pid = Int32(1000 + random.below(12))
      let status = random.below(100) < 2 ? 500 : 200
      spans.append(
        HTTPSpan(
          traceID: random.bytes(16), spanID: random.bytes(8),
          parentSpanID: random.below(2) == 0 ? random.bytes(8) : nil, kind: .server, method: "GET",
          path: routes[random.below(routes.count)], status: status, startUnixNanos: start,
          endUnixNanos: start + duration, pid: pid, tid: pid + Int32(random.below(8)),
          peerAddress: "10.0.0.\(random.below(250))", peerPort: 40000 + random.below(20000),
          serverPort: 8080, bytesIn: 300, bytesOut: UInt64(500 + random.below(5000))))
    }
    let sampleCount = 19 * busyCores * Int(Self.windowNanos / 1_000_000_000)
    var counts: [ProfileSample: Int64] = [:]
    for _ in 0..<sampleCount {
      // Four samples in five inside a span, as on a host busy serving.
      var span: SpanContext?
      var pid = Int32(1000 + random.below(12))
      var tid = pid
      if !spans.isEmpty, random.below(5) != 0 {
        let owner = random.below(spans.count)
        span = SpanContext(
          traceID: spans[owner].traceID, spanID: spans[owner].spanID, name: spans[owner].name)
        pid = spans[owner].pid
        tid = spans[owner].tid
        spans[owner].cpuSamples = (spans[owner].cpuSamples ?? 0) + 1
      }
      let sample = ProfileSample(
        stack: stacks[random.below(stacks.count)], pid: pid, tid: tid,
        threadName: "worker-\(tid % 8)",
        span: span, count: 0)
      counts[sample, default: 0] += 1
    }
    let samples = counts.map { sample, count in
      var sample = sample
      sample.count = count
      return sample
    }
    return (
      Profile(
        samples: samples, periodNanos: Self.period, startTimeNanos: startNanos,
        durationNanos: Self.windowNanos),
      spans
    )
  }
}
