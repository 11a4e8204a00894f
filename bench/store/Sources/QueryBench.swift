import FlamespanAgent
import FlamespanExport
import FlamespanModel
import Foundation

/// Times the four drill-down questions on a generated store, as the agent's API asks them (the profile
/// queries rendered as folded stacks), `runs` times each, then the RSS over a burst of 100 of them.
struct QueryBench {
  var directory: String
  var format: String
  var runs: Int

  struct Failure: Error, CustomStringConvertible {
    var description: String
  }

  func run() throws {
    // The trace ids come from the SQLite copy of the same generated data, for both formats.
    let sqlite = try SQLiteStore(
      directory: directory + "/sqlite", maximumAgeNanos: 1 << 62, maximumBytes: 1 << 40)
    let traces = try sqlite.someSampledTraceIDs(max(runs, 100))
    guard !traces.isEmpty, let newest = try sqlite.newestWindowEndMillis() else {
      throw Failure(description: "the store at \(directory)/sqlite is empty: run generate first")
    }
    let pid: Int32 = 1000
    typealias Question = (label: String, ask: (Int) throws -> Int)
    var questions: [Question] = []
    let lastHour = newest - 3_600_000
    let lastQuarter = newest - 15 * 60_000
    if format == "sqlite" {
      questions.append(
        (
          "trace lookup by id",
          { index in
            try sqlite.spans(traceID: traces[index % traces.count], limit: 100).count
          }
        ))
      questions.append(
        (
          "trace profile (folded)",
          { index in
            let profile = try sqlite.traceProfile(traceID: traces[index % traces.count])
            return FoldedStacks.render(profile).count
          }
        ))
      questions.append(
        (
          "slowest 100 in 15 min",
          { _ in
            try sqlite.slowestSpans(fromMillis: lastQuarter, toMillis: newest, limit: 100).count
          }
        ))
      questions.append(
        (
          "1 h process profile (folded)",
          { _ in
            let profile = try sqlite.profile(
              fromMillis: lastHour, toMillis: newest, pid: pid, withSpans: false)
            return FoldedStacks.render(profile).count
          }
        ))
    } else {
      let files = try WindowStore(
        directory: directory + "/files", maximumAgeNanos: 1 << 62, maximumBytes: 1 << 40)
      // As the file-store agent answered: the whole retention's span files decoded to find a trace.
      questions.append(
        (
          "trace lookup by id",
          { index in
            let trace = traces[index % traces.count]
            return try files.spans(fromMillis: 0, toMillis: .max).filter { $0.traceID == trace }
              .count
          }
        ))
      questions.append(
        (
          "trace profile (folded)",
          { index in
            let trace = traces[index % traces.count]
            let known = try files.spans(fromMillis: 0, toMillis: .max).filter {
              $0.traceID == trace
            }
            let from = (known.map(\.startUnixNanos).min() ?? 0) / 1_000_000 - 1000
            let to = (known.map(\.endUnixNanos).max() ?? Int64.max / 2) / 1_000_000 + 1000
            let profile = try files.profile(fromMillis: from, toMillis: to) {
              $0.span?.traceID == trace
            }
            return FoldedStacks.render(profile).count
          }
        ))
      questions.append(
        (
          "slowest 100 in 15 min",
          { _ in
            var spans = try files.spans(fromMillis: lastQuarter, toMillis: newest)
            spans.sort { $0.durationNanos > $1.durationNanos }
            return spans.prefix(100).count
          }
        ))
      questions.append(
        (
          "1 h process profile (folded)",
          { _ in
            let profile = try files.profile(fromMillis: lastHour, toMillis: newest) {
              $0.pid == pid
            }
            return FoldedStacks.render(profile).count
          }
        ))
    }
    print("format \(format), \(runs) runs per question")
    for question in questions {
      let label = question.label
      var millis: [Double] = []
      var answered = 0
      for index in 0..<runs {
        let start = DispatchTime.now().uptimeNanoseconds
        answered = try question.ask(index)
        millis.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
      }
      print(
        String(
          format: "%@: p50 %.2f ms, p99 %.2f ms, max %.2f ms (last answer %d)", label,
          BenchStats.percentile(millis, 50), BenchStats.percentile(millis, 99), millis.max() ?? 0,
          answered))
    }
    let before = BenchClock.residentBytes()
    var peak = before
    for index in 0..<100 {
      _ = try questions[index % questions.count].ask(index)
      peak = max(peak, BenchClock.residentBytes())
    }
    let after = BenchClock.residentBytes()
    print(
      "RSS over a burst of 100 queries (25 of each): before \(before >> 20) MiB, peak \(peak >> 20) MiB (+\((peak - before) >> 20) MiB), after \(after >> 20) MiB"
    )
  }
}
