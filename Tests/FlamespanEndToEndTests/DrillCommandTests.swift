import FlamespanExport
import FlamespanModel
import FlamespanTestSupport
import Foundation
import Testing

/// `flamespan drill` and `flamespan spans` as a user runs them, checked with `go tool pprof`.
@Suite struct DrillCommandTests {
  let profile = SpanProfileFixture.profile()

  let flamespan = TestEnvironment.flamespanBinary

  static func goPprof(_ arguments: [String], home: TemporaryDirectory) throws -> Run.Result {
    try Run.command(
      ["go", "tool", "pprof"] + arguments,
      environment: [
        "HOME": home.url.path, "GOCACHE": home.file("gocache"), "GOPATH": home.file("gopath"),
        "PPROF_TMPDIR": home.url.path, "GOFLAGS": "", "GOTOOLCHAIN": "local",
      ])
  }

  /// `-tags` output as key → value → count.
  static func tags(_ text: String) -> [String: [String: Double]] {
    var sections: [String: [String: Double]] = [:]
    var current: String?
    for line in text.split(separator: "\n") {
      let trimmed = line.trimmingCharacters(in: .whitespaces)
      if let range = trimmed.range(of: ": Total ") {
        current = String(trimmed[..<range.lowerBound])
        sections[current!] = [:]
      } else if let key = current, let end = trimmed.range(of: "%): ") {
        sections[key]?[String(trimmed[end.upperBound...])] =
          Double(trimmed.split(separator: " ")[0]) ?? -1
      }
    }
    return sections
  }

  /// The samples pprof kept after its filters: "Showing nodes accounting for 77, 68.14% of 113 total"
  /// → 77 (the nodecount is high enough that no node is dropped).
  static func total(_ top: String) -> Double? {
    guard let line = top.split(separator: "\n").first(where: { $0.contains("accounting for ") }),
      let start = line.range(of: "accounting for ")
    else { return nil }
    return Double(line[start.upperBound...].prefix { $0 != "," })
  }

  @Test(.requires(.tool("go"))) func drillByTraceMatchesWhatPprofTagfocusSelects() throws {
    let directory = try TemporaryDirectory("drill-cli")
    let input = directory.file("all.pb.gz")
    try ProfileExporter.write(profile, to: input, title: "unused")
    let trace = SpanProfileFixture.checkoutA.traceIDHex
    let output = directory.file("trace.pb.gz")
    let drilled = try Run.command([
      flamespan, "drill", "--trace", trace, input, "-o", output, "-o",
      directory.file("trace.otlp.pb"),
    ])
    try #require(drilled.status == 0, "drill failed: \(drilled.stderr)")

    let tags = try Self.goPprof(["-tags", "-sample_index=samples", output], home: directory)
    try #require(tags.status == 0, "\(tags.stderr)")
    let sections = Self.tags(tags.stdout)
    let expectedTotal = Double(
      profile.samples.filter { $0.span?.traceIDHex == trace }.reduce(0) { $0 + $1.count })
    #expect(sections["trace_id"] == [trace: expectedTotal], "\(tags.stdout)")
    #expect(
      sections["span_id"]
        == [
          SpanProfileFixture.checkoutA.spanIDHex: 65, SpanProfileFixture.paymentA.spanIDHex: 12,
        ], "\(tags.stdout)")

    // pprof's own selection of that trace from the full profile agrees with drill's file.
    let focused = try Self.goPprof(
      ["-top", "-nodecount=1000", "-sample_index=samples", "-tagfocus=trace_id=\(trace)", input],
      home: directory)
    let drilledTop = try Self.goPprof(
      ["-top", "-nodecount=1000", "-sample_index=samples", output], home: directory)
    #expect(Self.total(focused.stdout) == expectedTotal, "\(focused.stdout)")
    #expect(Self.total(drilledTop.stdout) == expectedTotal, "\(drilledTop.stdout)")

    let fromOTLP = try ProfileReader.read(from: directory.file("trace.otlp.pb"))
    #expect(fromOTLP.totalCount == Int64(expectedTotal))
    #expect(fromOTLP.samples.allSatisfy { $0.span?.traceIDHex == trace })
  }

  @Test func drillWithoutFilterConvertsOTLPToPprof() throws {
    let directory = try TemporaryDirectory("drill-convert")
    let input = directory.file("all.otlp.pb")
    try ProfileExporter.write(profile, to: input, title: "unused")
    let result = try Run.command([
      flamespan, "drill", input, "--output", directory.file("all.pb.gz"),
    ])
    try #require(result.status == 0, "\(result.stderr)")
    let converted = try ProfileReader.read(from: directory.file("all.pb.gz"))
    #expect(SampleMeaning.of(converted) == SampleMeaning.of(profile))
  }

  @Test func badIdsAndBadInputsFailCleanly() throws {
    let directory = try TemporaryDirectory("drill-bad")
    let out = directory.file("out.pb.gz")
    let badTrace = try Run.command([flamespan, "drill", "--trace", "1234", "x.pb.gz", "-o", out])
    #expect(badTrace.status != 0)
    #expect(badTrace.stderr.contains("trace id"), "\(badTrace.stderr)")
    let badSpan = try Run.command([
      flamespan, "drill", "--span", "00f067aa0ba902bX", "x.pb.gz", "-o", out,
    ])
    #expect(badSpan.status != 0)
    #expect(badSpan.stderr.contains("span id"), "\(badSpan.stderr)")

    let missing = try Run.command([flamespan, "drill", directory.file("nope.pb.gz"), "-o", out])
    #expect(missing.status == 1)
    #expect(missing.stderr.contains("nope.pb.gz"), "\(missing.stderr)")

    // Cut real files at several places: each run must end with exit 1 and a message, never a signal.
    for name in ["in.pb.gz", "in.otlp.pb"] {
      let full = directory.file("full-" + name)
      try ProfileExporter.write(profile, to: full, title: "unused")
      let bytes = try Data(contentsOf: URL(fileURLWithPath: full))
      for cut in [1, 2, 5, 11, bytes.count / 3, bytes.count / 2, bytes.count - 9, bytes.count - 1] {
        let truncated = directory.file("cut-\(cut)-" + name)
        try bytes.prefix(cut).write(to: URL(fileURLWithPath: truncated))
        for command in [["drill", truncated, "-o", out], ["spans", truncated]] {
          let result = try Run.command([flamespan] + command)
          #expect(result.status == 1, "\(command) at \(cut): \(result.status) \(result.stderr)")
          #expect(
            result.stderr.contains("malformed") || result.stderr.contains("truncated")
              || result.stderr.contains("decompression"), "\(result.stderr)")
        }
      }
    }
  }

  @Test func spansListsHeaviestFirstAsTableAndJSON() throws {
    let directory = try TemporaryDirectory("spans-cli")
    for name in ["p.pb.gz", "p.otlp.pb"] {
      let input = directory.file(name)
      try ProfileExporter.write(profile, to: input, title: "unused")
      let json = try Run.command([flamespan, "spans", "--json", input])
      try #require(json.status == 0, "\(json.stderr)")
      let object = try #require(
        try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
      let spans = try #require(object["spans"] as? [[String: Any]])
      let expected = SpanSummary.summarize(profile)
      #expect(spans.map { $0["spanID"] as? String } == expected.map(\.spanID), "\(name)")
      #expect(spans.map { ($0["samples"] as? NSNumber)?.int64Value } == expected.map(\.samples))
      #expect(spans.first?["topFunction"] as? String == expected.first?.topFunction)
      #expect(
        (object["samplesOutsideSpans"] as? NSNumber)?.int64Value
          == SpanSummary.samplesOutsideSpans(profile))

      let table = try Run.command([flamespan, "spans", input])
      try #require(table.status == 0, "\(table.stderr)")
      let lines = table.stdout.split(separator: "\n")
      #expect(lines.first?.hasPrefix("TRACE ID") == true)
      #expect(lines.count == 1 + expected.count + 1)
      #expect(lines[1].contains(expected[0].spanID) && lines[1].contains("POST /checkout"))
      #expect(lines.last?.contains("8 of \(profile.totalCount) samples outside any span") == true)
    }
  }
}
