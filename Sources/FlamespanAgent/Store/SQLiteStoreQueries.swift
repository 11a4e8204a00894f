import FlamespanModel
import Foundation
internal import GRDB

/// The store's reads. Each runs on a reader connection, concurrent with the writer, and stays bounded:
/// ranges aggregate in SQL a few windows at a time (checking the deadline between them), span lists are
/// limited in SQL, and stacks are decoded once per query whatever the number of samples naming them.
extension SQLiteStore {
  /// Windows a range query aggregates per SQL statement: the deadline is checked between two.
  static let windowsPerStep = 30

  private struct WindowRange {
    var ids: [Int64] = []
    var periodNanos: Int64 = 1_000_000_000 / 19
    var startNanos = Int64.max
    var endNanos = Int64.min
  }

  private func windows(fromMillis: Int64, toMillis: Int64, _ db: Database) throws -> WindowRange {
    var range = WindowRange()
    for row in try Row.fetchAll(
      db,
      sql: """
        SELECT id, period_ns, start_ns, end_ns FROM windows
        WHERE end_ns >= ? AND start_ns <= ? ORDER BY start_ns, id
        """,
      arguments: [
        fromMillis.multipliedReportingOverflow(by: 1_000_000).overflow
          ? Int64.min : fromMillis * 1_000_000,
        toMillis.multipliedReportingOverflow(by: 1_000_000).overflow
          ? Int64.max : toMillis * 1_000_000 + 999_999,
      ])
    {
      range.ids.append(row[0])
      range.periodNanos = row[1]
      range.startNanos = min(range.startNanos, row[2])
      range.endNanos = max(range.endNanos, row[3])
    }
    return range
  }

  /// Sample counts by (stack, thread, sample span).
  private struct SampleKey: Hashable {
    var stack: Int64
    var thread: Int64
    var span: Int64
  }

  private func read<T>(_ body: (Database) throws -> T) throws(StoreQueryFailure) -> T {
    do { return try pool.read(body) } catch let failure as StoreQueryFailure {
      throw failure
    } catch {
      throw .unreadable(
        StoreReadError(message: "\(SQLiteStoreError(step: "read", path: path, error))"))
    }
  }

  /// The windows that overlap [from, to] (Unix milliseconds), merged into one profile, for one process
  /// or all. Past `deadline` (monotonic nanoseconds) the query stops between two steps and throws.
  ///
  /// `withSpans: false` leaves the samples' span labels out and merges what they told apart: a flame graph
  /// or folded stacks do not show them, and on a busy host nearly every span has its own samples, so a
  /// range's profile is then a few thousand stacks instead of one row per span.
  package func profile(
    fromMillis: Int64, toMillis: Int64, pid: Int32? = nil, withSpans: Bool = true,
    deadline: UInt64 = .max
  ) throws(StoreQueryFailure) -> Profile {
    try read { db in
      let range = try windows(fromMillis: fromMillis, toMillis: toMillis, db)
      var counts: [SampleKey: Int64] = [:]
      var done = 0
      while done < range.ids.count {
        if KernelClock.monotonicNanos() > deadline {
          throw StoreQueryFailure.overBudget(
            StoreQueryOverBudget(windowsRead: done, windowsTotal: range.ids.count))
        }
        let step = range.ids[done..<min(done + Self.windowsPerStep, range.ids.count)]
        let list = step.map(String.init).joined(separator: ",")
        let rows = try Row.fetchCursor(
          db,
          sql: """
            SELECT stack_id, thread_id, \(withSpans ? "sample_span" : "0"), sum(count) FROM samples
            WHERE window_id IN (\(list)) \(pid == nil ? "" : "AND pid = \(pid!)")
            GROUP BY stack_id, thread_id\(withSpans ? ", sample_span" : "")
            """)
        while let row = try rows.next() {
          counts[SampleKey(stack: row[0], thread: row[1], span: row[2]), default: 0] += row[3]
        }
        done += step.count
      }
      return try StoreProfileDecoder(db).profile(
        counts.map { ($0.key.stack, $0.key.thread, $0.key.span, $0.value) },
        periodNanos: range.periodNanos,
        startNanos: range.startNanos == .max ? fromMillis * 1_000_000 : range.startNanos,
        endNanos: range.endNanos == .min ? fromMillis * 1_000_000 : range.endNanos)
    }
  }

  /// The samples taken in a trace (or one of its spans), wherever they are in the retention: one indexed
  /// query over the sample spans of that trace, then the stacks it touches. `fromMillis`/`toMillis`, when
  /// given, keep only the windows that overlap them.
  package func traceProfile(
    traceID: [UInt8], spanID: [UInt8]? = nil, fromMillis: Int64? = nil, toMillis: Int64? = nil
  ) throws(StoreQueryFailure) -> Profile {
    try read { db in
      var windowFilter = ""
      if fromMillis != nil || toMillis != nil {
        let from = (fromMillis ?? 0) * 1_000_000
        let to = toMillis.map { $0 * 1_000_000 + 999_999 } ?? Int64.max
        windowFilter =
          "AND s.window_id IN (SELECT id FROM windows WHERE end_ns >= \(from) AND start_ns <= \(to))"
      }
      var arguments: StatementArguments = [Data(traceID)]
      if let spanID { arguments += [Data(spanID)] }
      let rows = try Row.fetchAll(
        db,
        sql: """
          SELECT s.stack_id, s.thread_id, s.sample_span, sum(s.count), min(s.window_id),
            max(s.window_id)
          FROM sample_spans c INDEXED BY sample_spans_by_trace
            JOIN samples s INDEXED BY samples_by_span ON s.sample_span = c.id
          WHERE c.trace_id = ? AND s.sample_span != 0 \(spanID == nil ? "" : "AND c.span_id = ?")
            \(windowFilter)
          GROUP BY s.stack_id, s.thread_id, s.sample_span
          """, arguments: arguments)
      var first = Int64.max
      var last = Int64.min
      for row in rows {
        first = min(first, row[4])
        last = max(last, row[5])
      }
      var period: Int64 = 1_000_000_000 / 19
      var start = (fromMillis ?? KernelClock.unixNanos() / 1_000_000) * 1_000_000
      var end = start
      if let bounds = try Row.fetchOne(
        db,
        sql: """
          SELECT min(start_ns), max(end_ns), max(period_ns) FROM windows WHERE id IN (?, ?)
          """, arguments: [first, last]), let low: Int64 = bounds[0], let high: Int64 = bounds[1]
      {
        start = low
        end = high
        period = bounds[2]
      }
      return try StoreProfileDecoder(db).profile(
        rows.map { ($0[0], $0[1], $0[2], $0[3]) }, periodNanos: period, startNanos: start,
        endNanos: end)
    }
  }

  private static let spanColumns = """
    trace_id, span_id, parent_span_id, kind, method, path, host, status, start_ns, end_ns, pid, tid,
    peer_address, peer_port, server_port, bytes_in, bytes_out, cpu_samples
    """

  private static func span(_ row: Row) -> HTTPSpan {
    HTTPSpan(
      traceID: [UInt8](row[0] as Data), spanID: [UInt8](row[1] as Data),
      parentSpanID: (row[2] as Data?).map { [UInt8]($0) },
      kind: (row[3] as Int) == 0 ? .server : .client, method: row[4], path: row[5], host: row[6],
      status: row[7], startUnixNanos: row[8], endUnixNanos: row[9], pid: row[10], tid: row[11],
      peerAddress: row[12], peerPort: row[13], serverPort: row[14],
      bytesIn: UInt64(bitPattern: row[15]), bytesOut: UInt64(bitPattern: row[16]),
      cpuSamples: row[17])
  }

  /// The slowest spans active in [from, to] (for one process or all), slowest first, at most `limit`.
  /// Walks the duration index from the slowest down, checking the times in the index itself.
  package func slowestSpans(
    fromMillis: Int64, toMillis: Int64, pid: Int32? = nil, limit: Int
  ) throws(StoreQueryFailure) -> [HTTPSpan] {
    try read { db in
      try Row.fetchAll(
        db,
        sql: """
          SELECT \(Self.spanColumns) FROM spans INDEXED BY spans_by_duration
          WHERE end_ns >= ? AND start_ns <= ? \(pid == nil ? "" : "AND pid = \(pid!)")
          ORDER BY duration_ns DESC LIMIT ?
          """,
        arguments: [
          fromMillis.multipliedReportingOverflow(by: 1_000_000).overflow
            ? Int64.min : fromMillis * 1_000_000,
          toMillis.multipliedReportingOverflow(by: 1_000_000).overflow
            ? Int64.max : toMillis * 1_000_000 + 999_999,
          max(limit, 0),
        ]
      ).map(Self.span)
    }
  }

  /// The spans of a trace anywhere in the retention (optionally only those active in [from, to]),
  /// slowest first, at most `limit`.
  package func spans(
    traceID: [UInt8], fromMillis: Int64? = nil, toMillis: Int64? = nil, pid: Int32? = nil,
    limit: Int
  ) throws(StoreQueryFailure) -> [HTTPSpan] {
    try read { db in
      try Row.fetchAll(
        db,
        sql: """
          SELECT \(Self.spanColumns) FROM spans INDEXED BY spans_by_trace
          WHERE trace_id = ? AND end_ns >= ? AND start_ns <= ? \(pid == nil ? "" : "AND pid = \(pid!)")
          ORDER BY duration_ns DESC LIMIT ?
          """,
        arguments: [
          Data(traceID), (fromMillis ?? Int64.min / 1_000_000) * 1_000_000,
          toMillis.map { $0 * 1_000_000 + 999_999 } ?? Int64.max, max(limit, 0),
        ]
      ).map(Self.span)
    }
  }

  /// Samples per process in [from, to], most first, with a thread name of each (for its executable's
  /// name), aggregated in SQL a few windows at a time.
  package func processTotals(fromMillis: Int64, toMillis: Int64, deadline: UInt64 = .max)
    throws(StoreQueryFailure) -> [(pid: Int32, threadName: String, samples: Int64)]
  {
    try read { db in
      let range = try windows(fromMillis: fromMillis, toMillis: toMillis, db)
      var totals: [Int32: (thread: Int64, samples: Int64)] = [:]
      var done = 0
      while done < range.ids.count {
        if KernelClock.monotonicNanos() > deadline {
          throw StoreQueryFailure.overBudget(
            StoreQueryOverBudget(windowsRead: done, windowsTotal: range.ids.count))
        }
        let step = range.ids[done..<min(done + Self.windowsPerStep, range.ids.count)]
        for row in try Row.fetchAll(
          db,
          sql: """
            SELECT pid, min(thread_id), sum(count) FROM samples
            WHERE window_id IN (\(step.map(String.init).joined(separator: ","))) GROUP BY pid
            """)
        {
          let pid: Int32 = row[0]
          let known = totals[pid]
          totals[pid] = (min(known?.thread ?? .max, row[1]), (known?.samples ?? 0) + row[2])
        }
        done += step.count
      }
      var names: [Int64: String] = [:]
      let threadIDs = totals.values.map(\.thread)
      for start in stride(from: 0, to: threadIDs.count, by: 500) {
        let chunk = threadIDs[start..<min(start + 500, threadIDs.count)]
        for row in try Row.fetchAll(
          db,
          sql:
            "SELECT id, name FROM threads WHERE id IN (\(chunk.map(String.init).joined(separator: ",")))"
        ) {
          names[row[0]] = row[1]
        }
      }
      return totals.map { pid, entry in (pid, names[entry.thread] ?? "", entry.samples) }
        .sorted { ($0.samples, $1.pid) > ($1.samples, $0.pid) }
    }
  }

  /// Every stored window's name, oldest first (for tests and the crash check).
  package func windowNames() throws(StoreQueryFailure) -> [String] {
    try read { db in try String.fetchAll(db, sql: "SELECT name FROM windows ORDER BY start_ns, id")
    }
  }

  /// `PRAGMA integrity_check`'s answer: "ok", or what it found.
  package func integrityCheck() throws(StoreQueryFailure) -> String {
    try read { db in
      try String.fetchAll(db, sql: "PRAGMA integrity_check").joined(separator: "; ")
    }
  }
}

/// What the benchmark and the tests read besides the API's queries.
extension SQLiteStore {
  /// Bytes on disk per table, its indexes counted with it (SQLite's dbstat).
  package func bytesByTable() throws(StoreQueryFailure) -> [String: Int] {
    try read { db in
      var tableOf: [String: String] = [:]
      for row in try Row.fetchAll(db, sql: "SELECT name, tbl_name FROM sqlite_master") {
        tableOf[row[0]] = row[1]
      }
      var bytes: [String: Int] = [:]
      for row in try Row.fetchAll(db, sql: "SELECT name, sum(pgsize) FROM dbstat GROUP BY name") {
        let name: String = row[0]
        bytes[tableOf[name] ?? name, default: 0] += row[1]
      }
      return bytes
    }
  }

  /// Up to `count` trace ids that have samples, picked at random.
  package func someSampledTraceIDs(_ count: Int) throws(StoreQueryFailure) -> [[UInt8]] {
    try read { db in
      try Data.fetchAll(
        db, sql: "SELECT trace_id FROM sample_spans ORDER BY random() LIMIT ?", arguments: [count]
      ).map { [UInt8]($0) }
    }
  }

  /// The newest stored window's end, Unix milliseconds.
  package func newestWindowEndMillis() throws(StoreQueryFailure) -> Int64? {
    try read { db in
      try Int64.fetchOne(db, sql: "SELECT max(end_ns) FROM windows").map { $0 / 1_000_000 }
    }
  }

  /// Rows in a table (tests: what retention left).
  package func rowCount(_ table: String) throws(StoreQueryFailure) -> Int {
    try read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM \(table)") ?? 0 }
  }

  /// A PRAGMA's value (tests: the file's settings).
  package func pragma(_ name: String) throws(StoreQueryFailure) -> String {
    try read { db in try String.fetchOne(db, sql: "PRAGMA \(name)") ?? "" }
  }
}
