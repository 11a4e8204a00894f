import FlamespanExport
import FlamespanModel
import FlamespanOTLP
import FlamespanTestSupport
import Foundation
import Testing

@Suite struct ProfileFilterTests {
  let profile = SpanProfileFixture.profile()

  @Test func idsMustBeW3CHex() throws {
    #expect(throws: ProfileFilter.InvalidID.self) { try ProfileFilter(traceID: "4bf92f35") }
    #expect(throws: ProfileFilter.InvalidID.self) {
      try ProfileFilter(traceID: "4bf92f3577b34da6a3ce929d0e0e473g")
    }
    #expect(throws: ProfileFilter.InvalidID.self) {
      try ProfileFilter(traceID: String(repeating: "0", count: 32))
    }
    #expect(throws: ProfileFilter.InvalidID.self) { try ProfileFilter(spanID: "00f067aa0ba902b") }
    #expect(throws: ProfileFilter.InvalidID.self) {
      try ProfileFilter(spanID: "00f067aa0ba902b7a")
    }
    do {
      _ = try ProfileFilter(spanID: "zzzzzzzzzzzzzzzz")
      Issue.record("non-hex span id accepted")
    } catch {
      #expect(error.field == "span id")
      #expect(error.description.contains("zzzzzzzzzzzzzzzz"))
    }
    let upper = try ProfileFilter(traceID: "4BF92F3577B34DA6A3CE929D0E0E4736")
    #expect(upper.traceID == SpanProfileFixture.checkoutA.traceID)
    #expect(try ProfileFilter().isEmpty)
  }

  /// Every way of choosing samples, on every format drill reads: the result is exactly the samples of
  /// the original profile that carry the chosen ids, found here by comparing the model directly.
  @Test(arguments: ["profile.pb.gz", "profile.otlp.pb"])
  func drillKeepsExactlyTheMatchingSamples(fileName: String) throws {
    let directory = try TemporaryDirectory("filter")
    let path = directory.file(fileName)
    try ProfileExporter.write(profile, to: path, title: "unused")
    let readBack = try ProfileReader.read(from: path)

    let spans = [
      SpanProfileFixture.checkoutA, SpanProfileFixture.paymentA, SpanProfileFixture.checkoutB,
      SpanProfileFixture.unnamedC,
    ]
    var cases: [(ProfileFilter, (ProfileSample) -> Bool)] = []
    for span in spans {
      cases.append(
        (try ProfileFilter(traceID: span.traceIDHex), { $0.span?.traceID == span.traceID }))
      cases.append((try ProfileFilter(spanID: span.spanIDHex), { $0.span?.spanID == span.spanID }))
    }
    cases.append(
      (try ProfileFilter(spanName: "POST /checkout"), { $0.span?.name == "POST /checkout" }))
    cases.append(
      (
        try ProfileFilter(
          traceID: SpanProfileFixture.checkoutA.traceIDHex, spanName: "POST /checkout"),
        { $0.span == SpanProfileFixture.checkoutA }
      ))
    cases.append(
      (
        try ProfileFilter(
          traceID: SpanProfileFixture.checkoutA.traceIDHex,
          spanID: SpanProfileFixture.checkoutB.spanIDHex),
        { _ in false }
      ))
    cases.append((try ProfileFilter(spanName: "GET /nowhere"), { _ in false }))
    cases.append((try ProfileFilter(), { _ in true }))

    for (filter, isWanted) in cases {
      let expected = Profile(
        samples: profile.samples.filter(isWanted), periodNanos: 0, startTimeNanos: 0,
        durationNanos: 0)
      let drilled = filter.apply(to: readBack)
      #expect(SampleMeaning.of(drilled) == SampleMeaning.of(expected), "\(filter) on \(fileName)")
      #expect(drilled.totalCount == expected.totalCount)
      #expect(drilled.periodNanos == profile.periodNanos)
      #expect(drilled.startTimeNanos == profile.startTimeNanos)
    }
  }

  /// A drilled profile written in each output format and read back still holds only its span.
  @Test func drilledProfilesRoundTripThroughBothReadableFormats() throws {
    let directory = try TemporaryDirectory("filter-out")
    let filter = try ProfileFilter(spanID: SpanProfileFixture.paymentA.spanIDHex)
    let drilled = filter.apply(to: profile)
    for name in ["d.pb.gz", "d.otlp.pb", "d.folded", "d.svg"] {
      try ProfileExporter.write(drilled, to: directory.file(name), title: "drilled")
    }
    for name in ["d.pb.gz", "d.otlp.pb"] {
      let back = try ProfileReader.read(from: directory.file(name))
      #expect(SampleMeaning.of(back) == SampleMeaning.of(drilled), "\(name)")
    }
    let folded = try String(contentsOfFile: directory.file("d.folded"), encoding: .utf8)
    #expect(folded.contains("plugin_hash"))
    #expect(!folded.contains("copy_bytes"))
  }

  @Test func spanSummariesAreHeaviestFirstWithTheirTopFunction() throws {
    let summaries = SpanSummary.summarize(profile)
    #expect(
      summaries.map(\.spanID) == [
        SpanProfileFixture.checkoutA.spanIDHex, SpanProfileFixture.checkoutB.spanIDHex,
        SpanProfileFixture.paymentA.spanIDHex, SpanProfileFixture.unnamedC.spanIDHex,
      ])
    #expect(summaries.map(\.samples) == [65, 20, 12, 8])
    #expect(summaries[0].cpuNanos == 65 * profile.periodNanos)
    #expect(summaries[0].spanName == "POST /checkout")
    #expect(summaries[0].traceID == SpanProfileFixture.checkoutA.traceIDHex)
    #expect(summaries[0].topFunction == "tcp_sendmsg")
    #expect(summaries[0].topFunctionSamples == 40)
    // The innermost inline frame is the function that was running.
    #expect(summaries[3].topFunction == "copy_bytes")
    #expect(summaries[3].spanName == nil)
    // An unresolved leaf is named by where it is, never by a guessed function.
    #expect(summaries[2].topFunction == "[vdso]")
    #expect(SpanSummary.samplesOutsideSpans(profile) == 8)
    #expect(summaries.reduce(0) { $0 + $1.samples } + 8 == profile.totalCount)
  }

  /// Truncated pprof files, gzipped or raw, through the same reader `drill` uses.
  @Test func truncatedPprofInputsAreErrorsNotCrashes() throws {
    let raw = PprofEncoder.encode(profile)
    let gzipped = try Gzip.compress(raw)
    for (bytes, label) in [(raw, "raw"), (gzipped, "gzip")] {
      var refused = 0
      for length in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 400)) {
        do {
          _ = try ProfileReader.decode(Array(bytes[..<length]), format: .pprof)
        } catch {
          refused += 1
        }
      }
      #expect(refused > 0, "\(label)")
    }
  }
}
