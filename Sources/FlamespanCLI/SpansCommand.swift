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
      // Every cell comes from the profile, which anyone may have written: no byte of it may reach the
      // terminal as a control sequence.
      rows.append([
        TerminalText.escape(span.traceID), TerminalText.escape(span.spanID),
        cut(TerminalText.escape(span.spanName ?? "-")), String(span.samples),
        cpuText(span.cpuNanos), TerminalText.escape(top),
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

/// Text from a file, made safe to print on a terminal: C0 and C1 control characters (ESC, BEL, CR,
/// backspace, …), DEL and the bidirectional overrides that reorder what is shown become visible escapes
/// (`\x1b`, `\u{202e}`); everything else is kept.
enum TerminalText {
  static func escape(_ text: String) -> String {
    guard text.unicodeScalars.contains(where: isUnsafe) else { return text }
    var escaped = ""
    for scalar in text.unicodeScalars {
      if !isUnsafe(scalar) {
        escaped.unicodeScalars.append(scalar)
      } else if scalar.value < 0x100 {
        escaped += "\\x" + hex(scalar.value, width: 2)
      } else {
        escaped += "\\u{" + hex(scalar.value, width: 4) + "}"
      }
    }
    return escaped
  }

  static func isUnsafe(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.value {
    case 0x00...0x1f, 0x7f...0x9f: return true
    // Bidirectional marks, embeddings, overrides and isolates.
    case 0x200e...0x200f, 0x202a...0x202e, 0x2066...0x2069: return true
    default: return false
    }
  }

  private static func hex(_ value: UInt32, width: Int) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: max(0, width - digits.count)) + digits
  }
}
