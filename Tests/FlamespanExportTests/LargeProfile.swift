import FlamespanTestSupport
import FlamespanModel

/// Many distinct stacks over a shared pool of functions, shaped like a busy server's profile.
enum LargeProfile {
  static func make(distinctSamples: Int, functionPool: Int = 2_000) -> Profile {
    let mapping = Mapping(
      start: 0x40_0000, limit: 0x80_0000, fileOffset: 0, path: "/usr/bin/server", kind: .file)
    let locations = (0..<functionPool).map { index in
      ResolvedLocation(
        address: 0x40_0000 + UInt64(index) * 16, mapping: mapping,
        frames: [
          SourceFrame(function: "function_\(index)", file: "/src/file\(index % 50).c", line: index)
        ])
    }
    var generator = SplitMix(seed: 42)
    var samples: [ProfileSample] = []
    samples.reserveCapacity(distinctSamples)
    for index in 0..<distinctSamples {
      let depth = 8 + Int(generator.next() % 24)
      var stack = (0..<depth).map { _ in locations[Int(generator.next() % UInt64(locations.count))]
      }
      // A unique leaf keeps every sample distinct.
      stack.insert(
        ResolvedLocation(address: 0x40_0000 + UInt64(index), mapping: mapping, frames: []), at: 0)
      samples.append(
        ProfileSample(
          stack: stack, pid: Int32(1000 + index % 7), tid: Int32(2000 + index % 31),
          threadName: "worker-\(index % 31)",
          span: index % 3 == 0
            ? SpanContext(
              traceID: (0..<16).map { _ in UInt8(truncatingIfNeeded: generator.next()) },
              spanID: (0..<8).map { _ in UInt8(truncatingIfNeeded: generator.next()) },
              name: "GET /item/\(index % 13)")
            : nil,
          count: Int64(1 + generator.next() % 5)))
    }
    return Profile(
      samples: samples, periodNanos: 10_000_000, startTimeNanos: 1, durationNanos: 60_000_000_000)
  }
}
