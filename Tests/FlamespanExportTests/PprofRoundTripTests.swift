import FlamespanExport
import FlamespanModel
import FlamespanTestSupport
import Foundation
import Testing

@Suite struct PprofRoundTripTests {
  @Test func decodeRebuildsStacksLabelsSpansAndMappings() throws {
    let original = Fixture.profile()
    let decoded = try PprofDecoder.decode(try Gzip.compress(PprofEncoder.encode(original)))

    #expect(decoded.periodNanos == original.periodNanos)
    #expect(decoded.startTimeNanos == original.startTimeNanos)
    #expect(decoded.durationNanos == original.durationNanos)
    #expect(decoded.comments == original.comments)
    #expect(decoded.samples.count == original.samples.count)
    for (got, want) in zip(decoded.samples, original.samples) {
      #expect(got.count == want.count)
      #expect(got.pid == want.pid)
      #expect(got.tid == want.tid)
      #expect(got.threadName == want.threadName)
      #expect(got.span == want.span)
      #expect(got.stack == want.stack.map(\.withoutReason))
    }
    let vdso = decoded.samples[0].stack[1]
    #expect(
      vdso.frames.isEmpty,
      "an unresolved address must come back unresolved, not as a function named [vdso]")
    #expect(vdso.mapping?.kind == .vdso)
    #expect(decoded.samples[0].stack[0].mapping?.kind == .kernel)
    #expect(decoded.samples[0].stack[2].mapping?.buildID == Fixture.appBuildID)
  }

  @Test func mappingKindsSurviveByName() throws {
    let deleted = Mapping(
      start: 0x1000, limit: 0x2000, fileOffset: 0x3000, path: "/tmp/gone", kind: .deletedFile)
    let anonymous = Mapping(
      start: 0x5000, limit: 0x6000, fileOffset: 0, path: "[anon]", kind: .anonymous)
    let stack = [
      ResolvedLocation(address: 0x1100, mapping: deleted, frames: []),
      ResolvedLocation(address: 0x5100, mapping: anonymous, frames: []),
      ResolvedLocation(address: 0x9999, mapping: nil, frames: []),
    ]
    let profile = Profile(
      samples: [ProfileSample(stack: stack, pid: 0, tid: 0, threadName: "swapper/0", count: 1)],
      periodNanos: 1,
      startTimeNanos: 0, durationNanos: 0)
    let decoded = try PprofDecoder.decode(PprofEncoder.encode(profile))
    #expect(decoded.samples.first?.stack == stack)
    #expect(decoded.samples.first?.pid == 0, "pid 0 is a real label value, not a missing one")
    #expect(
      decoded.samples.first?.stack.map(\.displayName) == [
        "gone+0x3100", "[anon] 0x5100", "[unknown] 0x9999",
      ])
  }

  @Test func largeProfileRoundTrips() throws {
    let profile = LargeProfile.make(distinctSamples: 50_000)
    let clock = ContinuousClock()
    var encoded: [UInt8] = []
    let encodeTime = clock.measure { encoded = PprofEncoder.encode(profile) }
    var compressed: [UInt8] = []
    let compressTime = try clock.measure { compressed = try Gzip.compress(encoded) }
    var decoded: Profile?
    let decodeTime = try clock.measure { decoded = try PprofDecoder.decode(compressed) }
    print(
      "50k distinct samples: \(encoded.count) bytes raw, \(compressed.count) gzipped; encode \(encodeTime), "
        + "gzip \(compressTime), decode \(decodeTime)")
    #expect(decoded?.totalCount == profile.totalCount)
    #expect(decoded?.samples.count == profile.samples.count)
    #expect(decoded?.samples.last?.stack == profile.samples.last?.stack.map(\.withoutReason))
    #expect(decoded?.samples[300].span == profile.samples[300].span)
  }

  @Test func everyTruncationOfAGzippedProfileIsAnError() throws {
    let compressed = try Gzip.compress(PprofEncoder.encode(Fixture.profile()))
    for length in 0..<compressed.count {
      #expect(throws: ExportError.self, "prefix of \(length) bytes") {
        try PprofDecoder.decode(Array(compressed[0..<length]))
      }
    }
  }

  /// A raw protobuf cut at a field boundary can still be well-formed, so the rule there is weaker but still
  /// strict about crashes: every prefix either decodes or throws a malformed-profile error.
  @Test func everyTruncationOfARawProfileDecodesOrThrows() throws {
    let encoded = PprofEncoder.encode(Fixture.profile())
    var failures = 0
    for length in 0..<encoded.count {
      do {
        _ = try PprofDecoder.decode(Array(encoded[0..<length]))
      } catch {
        #expect(error.code == .malformedProfile)
        #expect(error.description.contains("not a valid pprof profile"))
        failures += 1
      }
    }
    // Cuts inside the leading sample types, samples, and any message must be noticed, i.e. almost all.
    #expect(failures > encoded.count * 9 / 10, "\(failures) of \(encoded.count) prefixes rejected")
  }

  @Test func corruptedBytesNeverCrash() throws {
    let encoded = PprofEncoder.encode(Fixture.profile())
    var generator = SplitMix(seed: 7)
    for _ in 0..<3_000 {
      var corrupted = encoded
      for _ in 0..<(1 + Int(generator.next() % 4)) {
        corrupted[Int(generator.next() % UInt64(corrupted.count))] = UInt8(
          truncatingIfNeeded: generator.next())
      }
      _ = try? PprofDecoder.decode(corrupted)
    }
    for length in [1, 2, 10, 1000] {
      let garbage = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
      _ = try? PprofDecoder.decode(garbage)
    }
    #expect(throws: ExportError.self) { try PprofDecoder.decode([]) }
    #expect(throws: ExportError.self) { try PprofDecoder.decode(Array("not a profile\n".utf8)) }
  }

  @Test func referencesToMissingEntriesAreNamed() throws {
    // A sample that points at location 9 in a profile with no locations.
    var writer: [UInt8] = []
    writer += [0x0a, 0x04, 0x08, 0x01, 0x10, 0x02]  // sample_type {type: 1, unit: 2}
    writer += [0x12, 0x05, 0x0a, 0x01, 0x09, 0x10, 0x01]  // sample {location_id: [9], value: 1}
    for text in ["", "samples", "count"] {
      writer += [0x32, UInt8(text.utf8.count)] + Array(text.utf8)
    }
    #expect {
      try PprofDecoder.decode(writer)
    } throws: { error in
      (error as? ExportError)?.description.contains("missing location 9") == true
    }
  }

  /// The committed fuzz seed was written by the hand-written encoder this one replaced; matching it byte
  /// for byte pins the string-table order, the mapping order and every field choice. After an intended
  /// change of the encoding, rewrite the seeds (FLAMESPAN_WRITE_FUZZ_SEEDS=1, see FuzzSeedTests).
  @Test func encodingMatchesTheCommittedSeedByteForByte() throws {
    let seed = try [UInt8](
      Data(contentsOf: FuzzSeedTests.corpus.appendingPathComponent("pprof/fixture.pb")))
    let encoded = PprofEncoder.encode(Fixture.profile())
    #expect(encoded.count == seed.count)
    #expect(encoded == seed, "the pprof encoding of the fixture changed")
  }

  @Test func nonUTF8StringsAreATypedError() throws {
    var bytes: [UInt8] = [0x32, 0x00]  // string_table[0] = ""
    bytes += [0x32, 0x02, 0xff, 0xfe]  // string_table[1]: not UTF-8
    #expect {
      try PprofDecoder.decode(bytes)
    } throws: { error in
      let error = error as? ExportError
      return error?.code == .malformedProfile && error?.description.contains("UTF-8") == true
    }
  }

  @Test func fieldsWeDoNotUseAreSkipped() throws {
    var bytes = PprofEncoder.encode(Fixture.profile())
    bytes += [0x38, 0x01]  // drop_frames = 1
    bytes += [0x78, 0x02]  // doc_url = 2
    bytes += [0xa0, 0x06, 0x07]  // field 100, unknown to profile.proto
    let decoded = try PprofDecoder.decode(bytes)
    #expect(decoded.totalCount == Fixture.profile().totalCount)
  }

  @Test func readsProfilesWrittenByGo() throws {
    // A CPU profile written by Go's runtime/pprof: a different writer, different field order and no
    // samples/count type, so the count comes from cpu/nanoseconds ÷ period.
    guard let go = ExternalTool.require("go", for: #function) else {
      #expect(!ExternalTool.isCI)
      return
    }
    let directory = try TemporaryDirectory("goprof")
    let program = """
      package main

      import (
      \t"os"
      \t"runtime/pprof"
      \t"syscall"
      )

      // Spins until this process has used the given CPU time, so a busy machine that gives it less
      // of a core makes the run longer instead of the profile thinner.
      func cpuMillis() int64 {
      \tvar usage syscall.Rusage
      \tsyscall.Getrusage(syscall.RUSAGE_SELF, &usage)
      \treturn usage.Utime.Sec*1000 + int64(usage.Utime.Usec)/1000
      }

      func spin(millis int64) int {
      \tx := 0
      \tfor start := cpuMillis(); cpuMillis()-start < millis; {
      \t\tfor i := 0; i < 100000; i++ {
      \t\t\tx += i * i
      \t\t}
      \t}
      \treturn x
      }

      func main() {
      \tf, _ := os.Create(os.Args[1])
      \tpprof.StartCPUProfile(f)
      \tspin(300)
      \tpprof.StopCPUProfile()
      \tf.Close()
      }
      """
    try program.write(toFile: directory.file("main.go"), atomically: true, encoding: .utf8)
    let output = try ExternalTool.run(
      go, ["run", directory.file("main.go"), directory.file("go.pb.gz")],
      environment: [
        "HOME": directory.path, "GOCACHE": directory.file("cache"),
        "GOPATH": directory.file("gopath"),
        "GO111MODULE": "off",
      ])
    try #require(output.status == 0, "go run failed: \(output.stderr)")
    let profile = try ProfileExporter.readPprof(from: directory.file("go.pb.gz"))
    #expect(profile.totalCount > 5, "300 ms of CPU at 100 Hz should give ~30 samples")
    #expect(profile.periodNanos == 10_000_000)
    let functions = Set(profile.samples.flatMap { $0.stack.flatMap { $0.frames.map(\.function) } })
    #expect(functions.contains("main.spin"), "\(functions)")
  }
}
