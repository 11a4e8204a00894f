import FlamespanExport
import FlamespanModel
import FlamespanOTLP
import FlamespanTestSupport
import Foundation
import Testing

/// The pprof and OTLP seeds of the fuzz corpus (Fuzz/Corpus) are the fixture profile as our own
/// exporters write it. They must keep decoding, or the fuzzers would start from inputs that fail at the
/// first byte; `FLAMESPAN_WRITE_FUZZ_SEEDS=1` rewrites them after an encoder change.
@Suite struct FuzzSeedTests {
  static let corpus = TestEnvironment.packageRoot.appendingPathComponent("Fuzz/Corpus")

  static func seeds() throws -> [(path: String, bytes: [UInt8])] {
    let profile = Fixture.profile()
    let pprof = PprofEncoder.encode(profile)
    return [
      ("pprof/fixture.pb", pprof),
      ("pprof/fixture.pb.gz", try Gzip.compress(pprof)),
      (
        "otlp/fixture.pb",
        try OTLPProfileEncoder.encode(
          profile, resource: OTLPResource(hostName: "fuzz-host", serviceName: "fuzz-seed"))
      ),
    ]
  }

  @Test func seedsDecode() throws {
    let write = ProcessInfo.processInfo.environment["FLAMESPAN_WRITE_FUZZ_SEEDS"] == "1"
    for seed in try Self.seeds() {
      let url = Self.corpus.appendingPathComponent(seed.path)
      if write { try Data(seed.bytes).write(to: url) }
      let bytes = try [UInt8](Data(contentsOf: url))
      let decoded =
        seed.path.hasPrefix("pprof/")
        ? try PprofDecoder.decode(bytes) : try OTLPProfileDecoder.decode(bytes)
      #expect(decoded.samples.map(\.count).reduce(0, +) == 45, "\(seed.path)")
    }
  }
}
