import ArgumentParser
import FlamespanExport
import FlamespanModel
import Foundation

struct SpansCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "spans",
    abstract: "List the spans in a profile with their CPU samples, heaviest first.",
    discussion: """
      Reads a profile written by `flamespan record` (pprof .pb.gz, or OTLP .otlp.pb). Each row is one \
      span: its ids, name, how many CPU samples were taken inside it, the CPU time those stand for, and \
      the function most often running. Pass a row's ids to `flamespan drill` to see its flame graph:

        flamespan spans profile.pb.gz
        flamespan drill --span 00f067aa0ba902b7 profile.pb.gz -o span.svg

      --json writes {"spans":[…],"samplesOutsideSpans":N,"totalSamples":N,"periodNanos":N} to stdout.
      """
  )

  @Argument(
    help: ArgumentHelp("The profile to read (.pb.gz, .pb or .otlp.pb).", valueName: "input"))
  var input: String

  @Flag(name: .long, help: "Write JSON for scripts instead of a table.")
  var json = false

  @Option(name: .long, help: "Show at most this many spans (0: all).")
  var limit = 0

  func validate() throws {
    if limit < 0 { throw ValidationError("--limit must be 0 or more (got \(limit))") }
  }

  func run() throws {
    let profile: Profile
    do {
      profile = try ProfileReader.read(from: input)
    } catch {
      Console.error("flamespan spans: \(error.description)")
      throw ExitCode(1)
    }
    var spans = SpanSummary.summarize(profile)
    let spanCount = spans.count
    if limit > 0 { spans = Array(spans.prefix(limit)) }
    let outside = SpanSummary.samplesOutsideSpans(profile)
    if json {
      let report = Report(
        spans: spans, samplesOutsideSpans: outside, totalSamples: profile.totalCount,
        periodNanos: profile.periodNanos)
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.sortedKeys]
      let data = try encoder.encode(report)
      print(String(decoding: data, as: UTF8.self))
      return
    }
    print(SpanTable.render(spans))
    var footer = "\(spanCount) span\(spanCount == 1 ? "" : "s")"
    if spans.count < spanCount { footer += " (showing \(spans.count))" }
    footer += "; \(outside) of \(profile.totalCount) samples outside any span"
    print(footer)
  }

  private struct Report: Encodable {
    var spans: [SpanSummary]
    var samplesOutsideSpans: Int64
    var totalSamples: Int64
    var periodNanos: Int64
  }
}

/// A plain-text table with columns padded to their widest cell; names are cut so rows stay readable.
enum SpanTable {
  static let maximumNameWidth = 40

  static func render(_ spans: [SpanSummary]) -> String {
    var rows = [["TRACE ID", "SPAN ID", "SPAN NAME", "SAMPLES", "CPU", "TOP FUNCTION"]]
    for span in spans {
      let top = span.topFunction.map { "\($0) (\(span.topFunctionSamples))" } ?? "-"
      rows.append([
        span.traceID, span.spanID, cut(span.spanName ?? "-"), String(span.samples),
        cpuText(span.cpuNanos), top,
      ])
    }
    let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
    let rightAligned: Set<Int> = [3, 4]
    return rows.map { row in
      row.enumerated().map { column, cell in
        let padding = String(repeating: " ", count: widths[column] - cell.count)
        if column == row.count - 1 { return cell }
        return rightAligned.contains(column) ? padding + cell : cell + padding
      }.joined(separator: "  ")
    }.joined(separator: "\n")
  }

  static func cut(_ text: String) -> String {
    text.count <= maximumNameWidth ? text : String(text.prefix(maximumNameWidth - 1)) + "…"
  }

  static func cpuText(_ nanos: Int64) -> String {
    if nanos >= 1_000_000_000 { return String(format: "%.2fs", Double(nanos) / 1e9) }
    return String(format: "%.1fms", Double(nanos) / 1e6)
  }
}
