import FlamespanExport
import FlamespanModel
import FlamespanOTLP
import FlamespanTestSupport
import Foundation
import Testing

/// Our .otlp.pb output read by the reference decoder, `opentelemetry-proto==1.44.0` for Python.
@Suite struct PythonDecoderTests {
  let profile = SpanProfileFixture.profile()

  func decodeWithPython(_ path: String) throws -> [String: Any] {
    let result = try PythonOTLP.run(script: "decode_profile.py", [path])
    #expect(result.status == 0, "decoder reported problems: \(result.stdout) \(result.stderr)")
    let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
    return try #require(json as? [String: Any], "not a JSON object: \(result.stdout)")
  }

  @Test(.requires(.pythonOTLP)) func referenceDecoderReadsSamplesLinksAttributesAndStacks() throws {
    let directory = try TemporaryDirectory("python")
    let path = directory.file("profile.otlp.pb")
    try ProfileExporter.write(profile, to: path, title: "unused")
    let decoded = try decodeWithPython(path)

    let resources = try #require(decoded["resource_profiles"] as? [[String: Any]])
    #expect(resources.count == 1)
    let resource = try #require(resources[0]["resource"] as? [String: Any])
    #expect(resource["host.name"] as? String == OTLPResource.local().hostName)
    let scopes = try #require(resources[0]["scope_profiles"] as? [[String: Any]])
    #expect(scopes.first?["scope"] as? String == "flamespan")
    let profiles = try #require(scopes.first?["profiles"] as? [[String: Any]])
    #expect(profiles.count == 1)
    let otlp = profiles[0]
    #expect(otlp["sample_type"] as? [String] == ["samples", "count"])
    #expect(otlp["period_type"] as? [String] == ["cpu", "nanoseconds"])
    #expect((otlp["period"] as? NSNumber)?.int64Value == profile.periodNanos)
    #expect((otlp["time_unix_nano"] as? NSNumber)?.int64Value == profile.startTimeNanos)
    #expect((otlp["duration_nano"] as? NSNumber)?.int64Value == profile.durationNanos)
    #expect((otlp["profile_id"] as? String)?.count == 32)
    let attributes = try #require(otlp["attributes"] as? [String: Any])
    #expect(attributes[OTLPAttribute.comment] as? [String] == profile.comments)

    let samples = try #require(otlp["samples"] as? [[String: Any]])
    try #require(samples.count == profile.samples.count)
    for (expected, actual) in zip(profile.samples, samples) {
      #expect((actual["values"] as? [NSNumber])?.map(\.int64Value) == [expected.count])
      let link = actual["link"] as? [String: String]
      #expect(link?["trace_id"] == expected.span?.traceIDHex)
      #expect(link?["span_id"] == expected.span?.spanIDHex)
      let sampleAttributes = try #require(actual["attributes"] as? [String: Any])
      #expect((sampleAttributes["process.pid"] as? NSNumber)?.int32Value == expected.pid)
      #expect((sampleAttributes["thread.id"] as? NSNumber)?.int32Value == expected.tid)
      #expect(sampleAttributes["thread.name"] as? String == expected.threadName)
      #expect(sampleAttributes[OTLPAttribute.spanName] as? String == expected.span?.name)

      let stack = try #require(actual["stack"] as? [[String: Any]])
      try #require(stack.count == expected.stack.count)
      for (location, frame) in zip(expected.stack, stack) {
        #expect((frame["address"] as? NSNumber)?.uint64Value == location.address)
        let lines = try #require(frame["lines"] as? [[String: Any]])
        // Inline chains: one Line per frame, innermost first, exactly as the symbolizer gave them.
        #expect(lines.map { $0["function"] as? String } == location.frames.map(\.function))
        #expect(lines.map { ($0["line"] as? NSNumber)?.intValue } == location.frames.map(\.line))
        #expect(
          lines.map { $0["file"] as? String } == location.frames.map { $0.file ?? "" })
        let frameType = (frame["attributes"] as? [String: Any])?[OTLPAttribute.frameType] as? String
        #expect(frameType == (location.mapping?.kind == .kernel ? "kernel" : "native"))
        let mapping = frame["mapping"] as? [String: Any]
        let mappingAttributes = mapping?["attributes"] as? [String: Any]
        #expect(
          mappingAttributes?[OTLPAttribute.gnuBuildID] as? String == location.mapping?.buildID?.hex)
        if let model = location.mapping, model.kind == .file {
          #expect(mapping?["filename"] as? String == model.path)
          #expect((mapping?["memory_start"] as? NSNumber)?.uint64Value == model.start)
          #expect((mapping?["file_offset"] as? NSNumber)?.uint64Value == model.fileOffset)
        }
      }
    }
  }

  /// The same check on the drilled file: only one trace's links survive, and nothing else changed.
  @Test(.requires(.pythonOTLP)) func drilledOTLPHoldsOnlyTheChosenTrace() throws {
    let directory = try TemporaryDirectory("python-drill")
    let trace = SpanProfileFixture.checkoutB.traceIDHex
    let filter = try ProfileFilter(traceID: trace)
    let path = directory.file("drilled.otlp.pb")
    try ProfileExporter.write(filter.apply(to: profile), to: path, title: "unused")
    let decoded = try decodeWithPython(path)
    let resources = try #require(decoded["resource_profiles"] as? [[String: Any]])
    let scopes = try #require(resources.first?["scope_profiles"] as? [[String: Any]])
    let profiles = try #require(scopes.first?["profiles"] as? [[String: Any]])
    let samples = try #require(profiles.first?["samples"] as? [[String: Any]])
    let expected = profile.samples.filter { $0.span?.traceIDHex == trace }
    #expect(samples.count == expected.count)
    #expect(samples.allSatisfy { ($0["link"] as? [String: String])?["trace_id"] == trace })
    let total = samples.compactMap { ($0["values"] as? [NSNumber])?.first?.int64Value }.reduce(0, +)
    #expect(total == expected.reduce(0) { $0 + $1.count })
  }
}
