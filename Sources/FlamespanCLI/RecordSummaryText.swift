import FlamespanModel
import FlamespanRecorder
import Glibc

/// The end-of-run report: what was sampled, what was lost, and where the CPU went.
enum RecordSummaryText {
  static func render(_ recording: Recording, topCount: Int = 10) -> String {
    let summary = recording.summary
    let seconds = Double(summary.durationNanos) / 1e9
    var lines: [String] = summary.warnings.map { "warning: \($0)" }
    lines.append(
      String(
        format: "Recorded %.2f s at %d Hz on %d CPU%@: %d samples from %d process%@.", seconds,
        summary.frequency,
        summary.sampledCPUs.count, summary.sampledCPUs.count == 1 ? "" : "s",
        summary.samplesReceived,
        summary.processes, summary.processes == 1 ? "" : "es"))
    lines.append(
      String(
        format: "A fully busy CPU gives %.0f samples in that time; the machine's maximum was %.0f.",
        summary.expectedSamplesPerBusyCPU,
        summary.expectedSamplesPerBusyCPU * Double(summary.sampledCPUs.count)))
    let counters = summary.counters
    lines.append(
      "Lost samples: \(summary.lostSamples) (ring buffer full \(counters.ringBufferFull), undecodable \(summary.malformedRecords)). "
        + "Stack read errors: kernel \(counters.kernelStackErrors), user \(counters.userStackErrors)."
    )
    if let unwinding = summary.unwinding {
      lines.append(unwinding.text.prefix(1).uppercased() + unwinding.text.dropFirst() + ".")
      let processLines = unwinding.processLines()
      if !processLines.isEmpty {
        lines.append(
          "By process, what stopped stacks early (worst first) and runtime data that could not be used:"
        )
        lines.append(contentsOf: processLines.map { "  " + $0 })
      }
      let interpreterLines = unwinding.interpreterLines
      if !interpreterLines.isEmpty {
        lines.append("Python processes:")
        lines.append(contentsOf: interpreterLines.map { "  " + $0 })
      }
    }
    if let http = summary.http, http.spans > 0 || http.eventsLost > 0 { lines.append(http.text) }
    if summary.processesGoneBeforeMaps > 0 {
      lines.append(
        "\(summary.processesGoneBeforeMaps) process(es) exited before their mappings were read; their user frames are unknown."
      )
    }
    if let status = summary.commandExitStatus {
      lines.append(
        "The command exited with status \(RecordCommand.shellStatus(status))."
      )
    }
    let total = max(recording.profile.totalCount, 1)
    let top = recording.profile.topFunctions(limit: topCount)
    if !top.isEmpty {
      lines.append("Top functions by self samples:")
      lines.append("   self   total  function")
      for share in top {
        lines.append(
          String(
            format: "  %5.1f%%  %5.1f%%  %@", 100 * Double(share.selfCount) / Double(total),
            100 * Double(share.totalCount) / Double(total), abbreviated(share.name)))
      }
    }
    return lines.joined(separator: "\n")
  }

  /// C++ and Swift names can run to hundreds of characters; the summary is for reading at a glance, the
  /// profile keeps the full name.
  static func abbreviated(_ name: String, limit: Int = 110) -> String {
    name.count <= limit ? name : String(name.prefix(limit - 1)) + "…"
  }
}
