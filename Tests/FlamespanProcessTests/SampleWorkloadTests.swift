import FlamespanModel
import FlamespanTestSupport
import Foundation
import Testing

@testable import FlamespanProcess

/// The sample workloads must build and behave as the README and benchmarks describe them.
@Suite(.serialized) struct SampleWorkloadTests {
  private func buildSamples() throws -> TemporaryDirectory {
    let directory = try TemporaryDirectory("process-samples")
    _ = try TestEnvironment.buildSamples(into: directory.url)
    return directory
  }

  @Test func hotpathsRunsTheAdvertisedMix() throws {
    let directory = try buildSamples()
    let binary = directory.file("hotpaths")
    let started = Date()
    let output = try Run.checked([binary, "1", "2"])
    let elapsed = Date().timeIntervalSince(started)
    #expect(elapsed >= 1.0 && elapsed < 10)
    let fields = Dictionary(
      uniqueKeysWithValues: output.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap {
        field in
        let parts = field.split(separator: "=", maxSplits: 1)
        return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
      })
    let rounds = try #require(fields["rounds"].flatMap { Int($0) })
    #expect(fields["threads"] == "2")
    #expect(rounds > 0)
    #expect(fields["heavy_units"].flatMap { Int($0) } == rounds * 3)
    #expect(fields["light_units"].flatMap { Int($0) } == rounds)

    // The frames the profiler tests look for must exist under their own names, with a build id.
    let symbols = try Run.checked(["/usr/bin/nm", binary])
    for name in ["main", "run_workload", "hot_path_heavy", "hot_path_light"] {
      #expect(symbols.contains(" T \(name)\n"), "\(name)")
    }
    #expect(!symbols.contains("mix_step"), "mix_step must be inlined everywhere")
    let expectedBuildID = try readelfBuildID(binary)
    #expect(expectedBuildID != nil)
    #expect(ELFBuildID.read(path: binary)?.hex == expectedBuildID)
  }

  @Test func hotpathsRejectsBadArguments() throws {
    let directory = try buildSamples()
    let result = try Run.command([directory.file("hotpaths"), "0"])
    #expect(result.status == 2)
    #expect(result.stderr.contains("usage"))
  }

  @Test func spinDoesFixedWorkAndExits() throws {
    let directory = try buildSamples()
    let output = try Run.checked([directory.file("spin"), "1000000", "2"])
    #expect(output.hasPrefix("spin: iterations=1000000 threads=2 elapsed="))
    // Fixed work is deterministic: the same arguments give the same checksum.
    let again = try Run.checked([directory.file("spin"), "1000000", "2"])
    #expect(output.split(separator: " ").last == again.split(separator: " ").last)
    #expect(try Run.command([directory.file("spin")]).status == 2)
  }
}
