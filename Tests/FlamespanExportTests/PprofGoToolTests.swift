import FlamespanExport
import FlamespanModel
import FlamespanTestSupport
import Foundation
import Testing

/// Checks our pprof output with the reference reader, `go tool pprof`, rather than with our own decoder.
@Suite struct PprofGoToolTests {
  /// Runs `go tool pprof` with its caches in a temporary home, so the test needs no writable $HOME.
  struct GoPprof {
    let go: String
    let home: TemporaryDirectory
    let profilePath: String

    init?(profile: Profile, test: String) throws {
      guard let go = ExternalTool.require("go", for: test) else {
        #expect(
          !ExternalTool.isCI,
          "CI must have `go` (golang-go) to check pprof output with the real reader")
        return nil
      }
      self.go = go
      home = try TemporaryDirectory("gohome")
      profilePath = home.file("profile.pb.gz")
      try ProfileExporter.write(profile, to: profilePath, title: "unused")
    }

    func run(_ arguments: [String]) throws -> String {
      let output = try ExternalTool.run(
        go, ["tool", "pprof"] + arguments + [profilePath],
        environment: [
          "HOME": home.path, "GOCACHE": home.file("cache"), "GOPATH": home.file("gopath"),
          "PPROF_TMPDIR": home.path, "GOFLAGS": "", "GOTOOLCHAIN": "local",
        ])
      #expect(output.status == 0, "go tool pprof \(arguments) failed: \(output.stderr)")
      return output.stdout
    }
  }

  /// `-top` rows as name → (flat, cum), for sample counts.
  static func topRows(_ text: String) -> [String: (flat: Int64, cum: Int64)] {
    var rows: [String: (flat: Int64, cum: Int64)] = [:]
    for line in text.split(separator: "\n") {
      let fields = line.split(separator: " ", omittingEmptySubsequences: true)
      guard fields.count >= 6, let flat = Int64(fields[0]), fields[1].hasSuffix("%"),
        let cum = Int64(fields[3])
      else { continue }
      rows[fields[5...].joined(separator: " ")] = (flat, cum)
    }
    return rows
  }

  /// `-tags` sections as key → (total, value → count). Counts print as "30.0" in this pprof version.
  static func tagSections(_ text: String) -> [String: (total: Double, values: [String: Double])] {
    var sections: [String: (total: Double, values: [String: Double])] = [:]
    var current: String?
    for line in text.split(separator: "\n") {
      let trimmed = line.trimmingCharacters(in: .whitespaces)
      if let range = trimmed.range(of: ": Total ") {
        let key = String(trimmed[..<range.lowerBound])
        sections[key] = (Double(trimmed[range.upperBound...]) ?? -1, [:])
        current = key
      } else if let key = current, let percentEnd = trimmed.range(of: "%): ") {
        let count = Double(trimmed.split(separator: " ")[0]) ?? -1
        sections[key]?.values[String(trimmed[percentEnd.upperBound...])] = count
      }
    }
    return sections
  }

  @Test func topShowsCountsForEveryFrameKind() throws {
    guard let pprof = try GoPprof(profile: Fixture.profile(), test: #function) else { return }
    let top = try pprof.run(["-top", "-sample_index=samples", "-nodecount=100"])
    let rows = Self.topRows(top)
    #expect(rows["do_syscall_64"]?.flat == 35, "kernel leaf frame:\n\(top)")
    #expect(rows["cold_function"]?.flat == 10, "\(top)")
    #expect(rows["[vdso]"]?.cum == 35, "unresolved vdso frame keeps its place name:\n\(top)")
    #expect(rows["inlined_leaf (inline)"]?.cum == 35, "\(top)")
    #expect(rows["inlined_middle (inline)"]?.cum == 35, "\(top)")
    #expect(rows["hot_function"]?.cum == 35, "\(top)")
    #expect(rows["main"]?.cum == 45, "\(top)")
    #expect(rows["__libc_start_call_main"]?.cum == 45, "\(top)")
    #expect(top.contains("Type: samples"))

    // The default sample type is CPU time: 45 samples of ~10.1 ms each.
    let cpuTop = try pprof.run(["-top", "-unit=ms"])
    #expect(cpuTop.contains("Type: cpu"), "\(cpuTop)")
    #expect(cpuTop.contains("454.55ms total") || cpuTop.contains("454.5ms total"), "\(cpuTop)")
  }

  @Test func tracesShowInlineChainInnermostFirst() throws {
    guard let pprof = try GoPprof(profile: Fixture.profile(), test: #function) else { return }
    let traces = try pprof.run(["-traces", "-sample_index=samples"])
    let lines = traces.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
    // pprof marks every line of a location except the outermost one as "(inline)".
    guard let leaf = lines.firstIndex(where: { $0.hasSuffix("inlined_leaf (inline)") }) else {
      Issue.record("no inlined_leaf (inline) line in:\n\(traces)")
      return
    }
    #expect(lines[leaf + 1] == "inlined_middle (inline)", "\(traces)")
    #expect(lines[leaf + 2] == "hot_function", "\(traces)")
    #expect(lines[leaf + 3] == "main", "\(traces)")
    #expect(lines[leaf - 1] == "[vdso]", "\(traces)")
    #expect(lines[leaf - 2] == "30   do_syscall_64", "\(traces)")
    // pprof names the profile after the first mapping, which should be the program, not the kernel.
    #expect(traces.hasPrefix("File: demo-app"), "\(traces)")
    #expect(traces.contains("trace_id:  4bf92f3577b34da6a3ce929d0e0e4736"), "\(traces)")
    #expect(traces.contains("span_name:  GET /checkout"), "\(traces)")
  }

  @Test func rawListsMappingsWithBuildIDsAndSymbolizedFlags() throws {
    guard let pprof = try GoPprof(profile: Fixture.profile(), test: #function) else { return }
    let raw = try pprof.run(["-raw"])
    let mappingLines = raw.split(separator: "\n").filter {
      $0.contains("0x") && ($0.contains("/") || $0.contains("["))
    }
    let appLine = mappingLines.first {
      $0.contains("demo-app") && $0.contains(Fixture.appBuildID.hex)
    }
    #expect(appLine?.contains("[FN]") == true, "app mapping must say it has functions:\n\(raw)")
    #expect(
      mappingLines.contains { $0.contains("[kernel.kallsyms]") && $0.contains("[FN]") }, "\(raw)")
    #expect(mappingLines.contains { $0.contains("[vdso]") && !$0.contains("[FN]") }, "\(raw)")
    #expect(raw.contains("Comment: lost samples: 0"), "comments survive:\n\(raw)")
    #expect(
      raw.contains("hot_function /src/demo.cc:30 s=0(_Z12hot_functionv)"),
      "mangled name kept as system_name:\n\(raw)")
    #expect(raw.contains("samples/count cpu/nanoseconds"), "\(raw)")
    #expect(raw.contains("30  303030300:"), "values are [count, count × period]:\n\(raw)")
    #expect(raw.contains("Period: 10101010"), "\(raw)")
    #expect(raw.contains("Duration: 5s"), "\(raw)")
  }

  @Test func tagsCarryThreadAndSpanLabels() throws {
    guard let pprof = try GoPprof(profile: Fixture.profile(), test: #function) else { return }
    let tags = try pprof.run(["-tags", "-sample_index=samples"])
    let sections = Self.tagSections(tags)
    #expect(sections["trace_id"]?.total == 35, "samples without a span carry no trace_id:\n\(tags)")
    #expect(sections["trace_id"]?.values["4bf92f3577b34da6a3ce929d0e0e4736"] == 30, "\(tags)")
    #expect(sections["trace_id"]?.values["0af7651916cd43dd8448eb211c80319c"] == 5, "\(tags)")
    #expect(sections["span_id"]?.values["00f067aa0ba902b7"] == 30, "\(tags)")
    #expect(sections["span_id"]?.values["b7ad6b7169203331"] == 5, "\(tags)")
    #expect(
      sections["span_name"]?.values == ["GET /checkout": 30],
      "the unnamed span has no span_name:\n\(tags)")
    #expect(sections["thread_name"]?.values == ["demo-worker": 35, "demo-main": 10], "\(tags)")
    #expect(sections["pid"]?.values == ["100": 45], "\(tags)")
    #expect(sections["tid"]?.values == ["101": 35, "102": 10], "\(tags)")
  }

  @Test func tagFocusOnTraceSelectsThatRequestsSamples() throws {
    guard let pprof = try GoPprof(profile: Fixture.profile(), test: #function) else { return }
    let focused = try pprof.run([
      "-top", "-sample_index=samples", "-tagfocus=trace_id=0af7651916cd43dd8448eb211c80319c",
    ])
    let rows = Self.topRows(focused)
    #expect(rows["do_syscall_64"]?.flat == 5, "\(focused)")
    #expect(rows["cold_function"] == nil, "cold stack has no span:\n\(focused)")
    #expect(focused.contains("Showing nodes accounting for 5, 11.11% of 45 total"), "\(focused)")
  }

  @Test func largeProfileIsReadable() throws {
    let profile = LargeProfile.make(distinctSamples: 50_000)
    guard let pprof = try GoPprof(profile: profile, test: #function) else { return }
    let top = try pprof.run(["-top", "-sample_index=samples", "-nodecount=5"])
    #expect(top.contains("\(profile.totalCount) total"), "\(top)")
  }
}
