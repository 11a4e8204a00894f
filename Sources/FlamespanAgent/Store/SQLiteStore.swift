import FlamespanModel
import Foundation
internal import GRDB

/// The agent's local store: one SQLite database (`store.sqlite` in the store directory) in WAL mode, one
/// writer and readers concurrent with it (GRDB's DatabasePool). Spans are rows indexed by trace id, span
/// id, time, name and status, and duration; samples are (window, stack, thread, span or none, pid, count)
/// rows over interned stacks, so a trace's profile is one indexed query and a range aggregates in SQL.
/// Retention deletes the oldest windows by age and by size, one small transaction each, and hands the
/// freed pages back to the file system (incremental vacuum).
///
/// Crash safety is SQLite's: a window is in the store once its transaction committed, and a kill at any
/// point leaves the last committed state. `synchronous = NORMAL` keeps that for a killed process; only
/// a power cut can lose the newest windows (never corrupt the file).
package final class SQLiteStore: @unchecked Sendable {
  package static let fileName = "store.sqlite"

  package let directory: URL
  package let maximumAgeNanos: Int64
  package let maximumBytes: Int
  /// `*.tmp` files found and removed when the store was opened: what earlier failures or crashes left.
  package let temporaryFilesRemoved: Int
  let pool: DatabasePool
  var path: String { directory.appendingPathComponent(Self.fileName).path }

  /// Serializes the writer: windows, retention, room-making and the import all write through it.
  let writeLock = NSLock()
  private let interner = StoreInterner()
  private let countersLock = NSLock()
  private var evictions: [StoreEviction: Int] = [:]
  private var windows = 0
  private let instance = String(UInt32.random(in: 0...UInt32.max), radix: 36)
  private var sequence = 0

  /// Subdirectories: `queue/` holds the export queue's journal (ExportJournal); `profiles/` and `spans/`
  /// are the file store of earlier agents, imported at start (LegacyStoreImport).
  package static let subdirectories = ["queue", "profiles", "spans"]

  package init(directory: String, maximumAgeNanos: Int64, maximumBytes: Int)
    throws(SQLiteStoreError)
  {
    self.directory = URL(fileURLWithPath: directory)
    self.maximumAgeNanos = maximumAgeNanos
    self.maximumBytes = maximumBytes
    let databasePath = self.directory.appendingPathComponent(Self.fileName).path
    do {
      try FileManager.default.createDirectory(
        at: self.directory.appendingPathComponent("queue"), withIntermediateDirectories: true,
        attributes: [.posixPermissions: 0o700])
    } catch {
      throw SQLiteStoreError(
        step: "create", path: directory, code: Int32((error as NSError).code),
        message: "\(error)", advice: "check that the agent can create and write \(directory)")
    }
    var removed = 0
    for sub in Self.subdirectories {
      removed += AtomicFile.removeTemporaryFiles(
        in: self.directory.appendingPathComponent(sub).path)
    }
    temporaryFilesRemoved = removed
    try Self.prepareFile(databasePath)
    var configuration = Configuration()
    configuration.busyMode = .timeout(10)
    configuration.maximumReaderCount = 4
    configuration.prepareDatabase { db in
      try db.execute(sql: "PRAGMA synchronous = NORMAL")
      // The log is reused after each checkpoint; past 4 MiB it is truncated back, so it stays small.
      try db.execute(sql: "PRAGMA journal_size_limit = 4194304")
      // The writer's cache holds the hot pages of the span indexes, whose random ids touch pages all over.
      if !db.configuration.readonly { try db.execute(sql: "PRAGMA cache_size = -16384") }
    }
    do {
      pool = try DatabasePool(path: databasePath, configuration: configuration)
      chmod(databasePath, 0o600)
      windows = try pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM windows") ?? 0
      }
    } catch {
      throw SQLiteStoreError(step: "open", path: databasePath, error)
    }
  }

  /// Creates the file with incremental auto-vacuum (which SQLite can set before the first table only),
  /// turns on WAL and brings the schema up to date; refuses a store written by a newer agent.
  private static func prepareFile(_ path: String) throws(SQLiteStoreError) {
    do {
      let queue = try DatabaseQueue(path: path)
      try queue.writeWithoutTransaction { db in
        let objects = try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master") ?? 0
        if objects == 0 { try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL") }
        try db.execute(sql: "PRAGMA journal_mode = WAL")
        let version = try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0
        if version > SQLiteStoreSchema.version {
          throw SQLiteStoreError(
            step: "open", path: path, code: 0,
            message:
              "the store has schema version \(version), newer than this agent's \(SQLiteStoreSchema.version)",
            advice: "run the agent version that wrote it, or give this one another --store")
        }
      }
      try SQLiteStoreSchema.migrator.migrate(queue)
      try queue.close()
    } catch {
      throw SQLiteStoreError(step: "open", path: path, error)
    }
  }

  package var windowCount: Int { countersLock.withLock { windows } }

  /// Bytes of the database and its write-ahead log on disk.
  package var totalBytes: Int {
    var total = 0
    for suffix in ["", "-wal"] {
      var info = stat()
      if stat(path + suffix, &info) == 0 { total += Int(info.st_size) }
    }
    return total
  }

  /// Windows deleted so far, by reason.
  package var evicted: [StoreEviction: Int] { countersLock.withLock { evictions } }

  /// A name for a new window, unique in this store: `<startMs>-<endMs>-<id>`. The export journal files the
  /// window's exports under the same name.
  package func newWindowName(for profile: Profile) -> String {
    let start = profile.startTimeNanos / 1_000_000
    let end = (profile.startTimeNanos + profile.durationNanos) / 1_000_000
    let id = countersLock.withLock {
      sequence += 1
      return "\(instance)\(sequence)"
    }
    return "\(start)-\(end)-\(id)"
  }

  /// Stores a window (its samples and spans) in one transaction, then applies retention. A full disk
  /// deletes the oldest windows, one at a time, until the window fits or none is left (then it throws).
  /// `services` names the service of each pid, for the spans' service column.
  package func add(
    profile: Profile, spans: [HTTPSpan], name: String? = nil, services: [Int32: String] = [:]
  ) throws(SQLiteStoreError) {
    let windowName = name ?? newWindowName(for: profile)
    while true {
      do {
        let inserted = try writeLock.withLock { try insert(profile, spans, windowName, services) }
        if inserted { countersLock.withLock { windows += 1 } }
        break
      } catch {
        let failure = SQLiteStoreError(step: "write a window to", path: path, error)
        guard failure.isDiskFull, makeRoom() else { throw failure }
      }
    }
    enforceRetention(nowMillis: KernelClock.unixNanos() / 1_000_000)
  }

  /// False when a window of that name is stored already (an import resumed after a crash).
  private func insert(
    _ profile: Profile, _ spans: [HTTPSpan], _ name: String, _ services: [Int32: String]
  ) throws -> Bool {
    do {
      return try pool.write { db in
        if try Int64.fetchOne(db, sql: "SELECT id FROM windows WHERE name = ?", arguments: [name])
          != nil
        {
          return false
        }
        try db.execute(
          sql: """
            INSERT INTO windows(name, start_ns, end_ns, period_ns, sample_rows, span_rows)
            VALUES (?, ?, ?, ?, ?, ?)
            """,
          arguments: [
            name, profile.startTimeNanos, profile.startTimeNanos + profile.durationNanos,
            profile.periodNanos, profile.samples.count, spans.count,
          ])
        let window = db.lastInsertedRowID
        interner.beginWindow()
        let sampleInsert = try db.cachedStatement(
          sql: """
            INSERT INTO samples(window_id, stack_id, thread_id, sample_span, pid, count)
            VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT DO UPDATE SET count = count + excluded.count
            """)
        for sample in profile.samples {
          let stack = try interner.stackID(sample.stack, window: window, db)
          let thread = try interner.threadID(
            pid: sample.pid, tid: sample.tid, name: sample.threadName, window: window, db)
          let span = try sample.span.map { try interner.sampleSpanID($0, window: window, db) } ?? 0
          try sampleInsert.execute(arguments: [
            window, stack, thread, span, sample.pid, sample.count,
          ])
        }
        try interner.markUsed(window: window, db)
        let spanInsert = try db.cachedStatement(
          sql: """
            INSERT INTO spans(window_id, trace_id, span_id, parent_span_id, kind, service, method, path,
              host, status, start_ns, end_ns, duration_ns, pid, tid, peer_address, peer_port,
              server_port, bytes_in, bytes_out, cpu_samples)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        var spanRows: (first: Int64, last: Int64)?
        for span in spans {
          let values: [(any DatabaseValueConvertible)?] = [
            window, Data(span.traceID), Data(span.spanID), span.parentSpanID.map { Data($0) },
            span.kind == .server ? 0 : 1, services[span.pid], span.method, span.path, span.host,
            span.status, span.startUnixNanos, span.endUnixNanos, span.durationNanos, span.pid,
            span.tid, span.peerAddress, span.peerPort, span.serverPort,
            Int64(bitPattern: span.bytesIn), Int64(bitPattern: span.bytesOut), span.cpuSamples,
          ]
          try spanInsert.execute(arguments: StatementArguments(values))
          spanRows = (spanRows?.first ?? db.lastInsertedRowID, db.lastInsertedRowID)
        }
        if let spanRows {
          try db.execute(
            sql: "UPDATE windows SET first_span = ?, last_span = ? WHERE id = ?",
            arguments: [spanRows.first, spanRows.last, window])
        }
        return true
      }
    } catch {
      // A failed transaction may have left ids in the caches that were rolled back.
      interner.forgetCaches()
      throw error
    }
  }

  /// Deletes the oldest stored window to free disk space (counted as `disk-full`); false when the store
  /// holds none. The export journal calls it when its own write finds the disk full.
  @discardableResult package func makeRoom() -> Bool {
    let deleted = writeLock.withLock { () -> Bool in
      guard let oldest = try? oldestWindows(limit: 1).first else { return false }
      guard (try? deleteWindow(oldest.id)) != nil else { return false }
      collectUnused()
      return true
    }
    if deleted { count(.diskFull) }
    return deleted
  }

  private func count(_ reason: StoreEviction) {
    countersLock.withLock {
      evictions[reason, default: 0] += 1
      windows -= 1
    }
  }

  private struct WindowRow {
    var id: Int64
    var endNanos: Int64
  }

  private func oldestWindows(limit: Int) throws -> [WindowRow] {
    try pool.read { db in
      try Row.fetchAll(
        db, sql: "SELECT id, end_ns FROM windows ORDER BY start_ns, id LIMIT ?", arguments: [limit]
      ).map { WindowRow(id: $0[0], endNanos: $0[1]) }
    }
  }

  /// One window's rows in one transaction: small, so a query waits for it (if at all) a few ms.
  private func deleteWindow(_ id: Int64) throws {
    try pool.write { db in
      try db.execute(sql: "DELETE FROM samples WHERE window_id = ?", arguments: [id])
      if let rows = try Row.fetchOne(
        db, sql: "SELECT first_span, last_span FROM windows WHERE id = ?", arguments: [id]),
        let first: Int64 = rows[0], let last: Int64 = rows[1]
      {
        try db.execute(
          sql: "DELETE FROM spans WHERE id BETWEEN ? AND ? AND window_id = ?",
          arguments: [first, last, id])
      }
      try db.execute(sql: "DELETE FROM windows WHERE id = ?", arguments: [id])
    }
  }

  /// Bytes the database's pages hold, free pages not counted: what the size cap compares.
  private func usedBytes() throws -> Int {
    try pool.read { db in
      let pageSize = try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 4096
      let pages = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
      let free = try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
      return (pages - free) * pageSize
    }
  }

  /// Deletes windows past the age limit, then the oldest while the store is over its size (the newest
  /// window stays even when it alone is over the cap); each deletion its own transaction.
  package func enforceRetention(nowMillis: Int64) {
    writeLock.withLock {
      var deleted = 0
      let oldestKept = (nowMillis - maximumAgeNanos / 1_000_000) * 1_000_000
      while let batch = try? oldestWindows(limit: 16), !batch.isEmpty {
        let expired = batch.filter { $0.endNanos < oldestKept }
        for window in expired where (try? deleteWindow(window.id)) != nil {
          deleted += 1
          count(.retention)
        }
        if expired.count < batch.count || expired.isEmpty { break }
      }
      while windowCount > 1, let used = try? usedBytes(), used > maximumBytes,
        let oldest = try? oldestWindows(limit: 1).first, (try? deleteWindow(oldest.id)) != nil
      {
        deleted += 1
        count(.maximumBytes)
      }
      if deleted > 0 { collectUnused() }
    }
  }

  /// Deletes interned rows that no stored window uses any more, in small batches, then returns the free
  /// pages to the file system. Under the write lock.
  private func collectUnused() {
    do {
      let oldest =
        try pool.read { db in try Int64.fetchOne(db, sql: "SELECT min(id) FROM windows") }
        ?? Int64.max
      for table in ["stacks", "locations", "symbols", "mappings", "threads", "sample_spans"] {
        while true {
          let changes = try pool.write { db in
            try db.execute(
              sql: """
                DELETE FROM \(table) WHERE id IN
                  (SELECT id FROM \(table) WHERE last_window < ? LIMIT 2000)
                """, arguments: [oldest])
            return db.changesCount
          }
          if changes < 2000 { break }
        }
      }
      interner.forgetCaches()
      try pool.writeWithoutTransaction { db in
        // A page-bounded step at a time, so a reader's checkpoint never waits long behind it.
        while try (Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0) > 0 {
          try db.execute(sql: "PRAGMA incremental_vacuum(1024)")
        }
      }
    } catch {
      Log.info(
        "store: cannot collect unused records: \(SQLiteStoreError(step: "clean", path: path, error))"
      )
    }
  }
}

extension SQLiteStore {
  /// Copies the write-ahead log into the database and truncates it, so the files' sizes are the data's
  /// (the benchmark's bytes on disk, the tests of the size cap). SQLite checkpoints by itself as it goes.
  package func checkpoint() throws(SQLiteStoreError) {
    do {
      try writeLock.withLock {
        try pool.writeWithoutTransaction { db in
          try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
        }
      }
    } catch {
      throw SQLiteStoreError(step: "checkpoint", path: path, error)
    }
  }
}
