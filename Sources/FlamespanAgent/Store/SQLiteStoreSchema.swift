internal import GRDB

/// The store's schema, version by version. A migration once shipped is never edited: a change is a new
/// migration, so a store written by any earlier agent opens and is brought up to date at start.
enum SQLiteStoreSchema {
  /// The newest schema version; `PRAGMA user_version` holds it too, for tools that read the file.
  static let version = 1

  static var migrator: DatabaseMigrator {
    var migrator = DatabaseMigrator()
    migrator.registerMigration("v1") { db in try createVersion1(db) }
    return migrator
  }

  private static func createVersion1(_ db: Database) throws {
    // One row per recorded window; `name` is the one the export journal files the window's exports under.
    try db.execute(
      sql: """
        CREATE TABLE windows (
          id INTEGER PRIMARY KEY,
          name TEXT NOT NULL UNIQUE,
          start_ns INTEGER NOT NULL,
          end_ns INTEGER NOT NULL,
          period_ns INTEGER NOT NULL,
          sample_rows INTEGER NOT NULL,
          span_rows INTEGER NOT NULL,
          -- The window's spans are the rows first_span...last_span of spans (one writer, one transaction),
          -- so deleting them needs no index on the window.
          first_span INTEGER,
          last_span INTEGER
        );
        CREATE INDEX windows_by_start ON windows(start_ns);
        CREATE INDEX windows_by_end ON windows(end_ns);
        """)
    // Interned records: a fingerprint of the bytes to find one, the bytes to confirm it, and the newest
    // window that used it, so retention can delete what no stored window uses any more.
    for table in ["mappings", "symbols", "locations", "stacks"] {
      try db.execute(
        sql: """
          CREATE TABLE \(table) (
            id INTEGER PRIMARY KEY,
            fingerprint INTEGER NOT NULL,
            body BLOB NOT NULL,
            last_window INTEGER NOT NULL
          );
          CREATE INDEX \(table)_by_fingerprint ON \(table)(fingerprint);
          CREATE INDEX \(table)_by_last_window ON \(table)(last_window);
          """)
    }
    try db.execute(
      sql: """
        CREATE TABLE threads (
          id INTEGER PRIMARY KEY,
          pid INTEGER NOT NULL,
          tid INTEGER NOT NULL,
          name TEXT NOT NULL,
          last_window INTEGER NOT NULL
        );
        CREATE INDEX threads_by_tid ON threads(pid, tid);
        CREATE INDEX threads_by_last_window ON threads(last_window);

        -- The trace and span a sample was taken in. Kept apart from spans: a sample can name a span the
        -- store does not hold (past --max-spans, or begun by another process's tracer).
        CREATE TABLE sample_spans (
          id INTEGER PRIMARY KEY,
          trace_id BLOB NOT NULL,
          span_id BLOB NOT NULL,
          name TEXT,
          last_window INTEGER NOT NULL
        );
        CREATE INDEX sample_spans_by_trace ON sample_spans(trace_id);
        CREATE INDEX sample_spans_by_span ON sample_spans(span_id);
        CREATE INDEX sample_spans_by_last_window ON sample_spans(last_window);

        -- Clustered by window, so a range reads contiguous pages; sample_span 0 is "in no span".
        CREATE TABLE samples (
          window_id INTEGER NOT NULL,
          stack_id INTEGER NOT NULL,
          thread_id INTEGER NOT NULL,
          sample_span INTEGER NOT NULL,
          pid INTEGER NOT NULL,
          count INTEGER NOT NULL,
          PRIMARY KEY (window_id, stack_id, thread_id, sample_span)
        ) WITHOUT ROWID;
        CREATE INDEX samples_by_span ON samples(sample_span) WHERE sample_span != 0;

        CREATE TABLE spans (
          id INTEGER PRIMARY KEY,
          window_id INTEGER NOT NULL,
          trace_id BLOB NOT NULL,
          span_id BLOB NOT NULL,
          parent_span_id BLOB,
          kind INTEGER NOT NULL,
          service TEXT,
          method TEXT NOT NULL,
          path TEXT NOT NULL,
          host TEXT,
          status INTEGER,
          start_ns INTEGER NOT NULL,
          end_ns INTEGER NOT NULL,
          duration_ns INTEGER NOT NULL,
          pid INTEGER NOT NULL,
          tid INTEGER NOT NULL,
          peer_address TEXT NOT NULL,
          peer_port INTEGER NOT NULL,
          server_port INTEGER NOT NULL,
          bytes_in INTEGER NOT NULL,
          bytes_out INTEGER NOT NULL,
          cpu_samples INTEGER
        );
        CREATE INDEX spans_by_trace ON spans(trace_id);
        CREATE INDEX spans_by_span ON spans(span_id);
        CREATE INDEX spans_by_end ON spans(end_ns);
        CREATE INDEX spans_by_name ON spans(service, method, path, status);
        -- "The slowest in a range": walked from the slowest down, the times checked in the index itself.
        CREATE INDEX spans_by_duration ON spans(duration_ns, end_ns, start_ns);
        """)
    try db.execute(sql: "PRAGMA user_version = 1")
  }
}
