import FlamespanModel
import Foundation
internal import GRDB

/// The writer's side of interning: each mapping, symbol, location, stack, thread and sample span gets an
/// id once, and later windows reuse it. The caches only spare lookups; the tables are the truth, so the
/// caches are dropped whenever retention deletes interned rows, or when they pass their bound.
/// Used under the store's write lock only.
final class StoreInterner {
  /// Entries over all caches past which they are emptied: a busy host's working set is a few thousand
  /// stacks, so this bounds the agent's memory without costing lookups in normal use.
  static let cacheLimit = 200_000

  private var mappings: [Mapping: Int64] = [:]
  private var symbols: [[UInt8]: Int64] = [:]
  /// A location's id with the ids of its mapping and symbol (0 for none), which its use marks too.
  private var locations: [ResolvedLocation: (id: Int64, mapping: Int64, symbol: Int64)] = [:]
  private var stacks: [[Int64]: Int64] = [:]
  /// Whole stacks as sampled, to their ids and every record they use: one hash per sample instead of one
  /// per frame, and the records marked once per stack and window.
  private var knownStacks: [[ResolvedLocation]: KnownStack] = [:]
  private var stacksThisWindow = Set<Int64>()

  private struct KnownStack {
    var id: Int64
    var records: [(table: String, id: Int64)]
  }
  private var threads: [ThreadKey: Int64] = [:]
  private var sampleSpans: [SpanContext: Int64] = [:]

  /// Ids used by the window being written, per table, to mark them with its id.
  private(set) var used: [String: Set<Int64>] = [:]

  struct ThreadKey: Hashable {
    var pid: Int32
    var tid: Int32
    var name: String
  }

  var cachedCount: Int {
    mappings.count + symbols.count + locations.count + stacks.count + threads.count
      + sampleSpans.count + knownStacks.count
  }

  func forgetCaches() {
    mappings = [:]
    symbols = [:]
    locations = [:]
    stacks = [:]
    knownStacks = [:]
    stacksThisWindow = []
    threads = [:]
    sampleSpans = [:]
  }

  func beginWindow() {
    if cachedCount > Self.cacheLimit { forgetCaches() }
    used = [:]
    stacksThisWindow = []
  }

  private func mark(_ table: String, _ id: Int64) { used[table, default: []].insert(id) }

  /// The id of a record in one of the fingerprinted tables, inserted when new.
  private func record(_ table: String, _ body: [UInt8], window: Int64, _ db: Database) throws
    -> Int64
  {
    let fingerprint = StoreRecordWriter.fingerprint(body)
    let found = try Row.fetchAll(
      db.cachedStatement(sql: "SELECT id, body FROM \(table) WHERE fingerprint = ?"),
      arguments: [fingerprint])
    for row in found {
      let stored: Data = row[1]
      if stored.elementsEqual(body) { return row[0] }
    }
    try db.cachedStatement(
      sql: "INSERT INTO \(table)(fingerprint, body, last_window) VALUES (?, ?, ?)"
    ).execute(arguments: [fingerprint, Data(body), window])
    return db.lastInsertedRowID
  }

  func mappingID(_ mapping: Mapping, window: Int64, _ db: Database) throws -> Int64 {
    if let id = mappings[mapping] {
      mark("mappings", id)
      return id
    }
    let id = try record("mappings", StoreRecords.encode(mapping), window: window, db)
    mappings[mapping] = id
    mark("mappings", id)
    return id
  }

  func locationID(_ location: ResolvedLocation, window: Int64, _ db: Database) throws -> Int64 {
    if let known = locations[location] {
      mark("locations", known.id)
      if known.mapping != 0 { mark("mappings", known.mapping) }
      if known.symbol != 0 { mark("symbols", known.symbol) }
      return known.id
    }
    let mappingID = try location.mapping.map { try self.mappingID($0, window: window, db) } ?? 0
    let symbolID = try symbolBody(location).map { try self.symbolID($0, window: window, db) } ?? 0
    let id = try record(
      "locations",
      StoreRecords.encodeLocation(location, mappingID: mappingID, symbolID: symbolID),
      window: window, db)
    locations[location] = (id, mappingID, symbolID)
    mark("locations", id)
    return id
  }

  /// The symbol record of a location: its frames under (build id or path, address in the file), so the
  /// same code named in every process and window is one row. Nil when the location has no frames.
  private func symbolBody(_ location: ResolvedLocation) -> [UInt8]? {
    guard !location.frames.isEmpty else { return nil }
    let object: String
    let address: UInt64
    if let mapping = location.mapping, mapping.kind == .file || mapping.kind == .deletedFile {
      object = mapping.buildID?.hex ?? mapping.path
      address = mapping.fileOffset(of: location.address)
    } else {
      object = location.mapping?.path ?? ""
      address = location.address
    }
    return StoreRecords.encodeSymbol(object: object, address: address, frames: location.frames)
  }

  private func symbolID(_ body: [UInt8], window: Int64, _ db: Database) throws -> Int64 {
    if let id = symbols[body] {
      mark("symbols", id)
      return id
    }
    let id = try record("symbols", body, window: window, db)
    symbols[body] = id
    mark("symbols", id)
    return id
  }

  func stackID(_ stack: [ResolvedLocation], window: Int64, _ db: Database) throws -> Int64 {
    if let known = knownStacks[stack] {
      if stacksThisWindow.insert(known.id).inserted {
        for record in known.records { mark(record.table, record.id) }
      }
      return known.id
    }
    var locationIDs: [Int64] = []
    locationIDs.reserveCapacity(stack.count)
    for location in stack { locationIDs.append(try locationID(location, window: window, db)) }
    let id: Int64
    if let found = stacks[locationIDs] {
      id = found
    } else {
      id = try record("stacks", StoreRecords.encodeStack(locationIDs), window: window, db)
      stacks[locationIDs] = id
    }
    mark("stacks", id)
    var records: [(table: String, id: Int64)] = [("stacks", id)]
    for location in stack {
      guard let known = locations[location] else { continue }
      records.append(("locations", known.id))
      if known.mapping != 0 { records.append(("mappings", known.mapping)) }
      if known.symbol != 0 { records.append(("symbols", known.symbol)) }
    }
    knownStacks[stack] = KnownStack(id: id, records: records)
    stacksThisWindow.insert(id)
    return id
  }

  func threadID(pid: Int32, tid: Int32, name: String, window: Int64, _ db: Database) throws
    -> Int64
  {
    let key = ThreadKey(pid: pid, tid: tid, name: name)
    if let id = threads[key] {
      mark("threads", id)
      return id
    }
    var found: Int64?
    for row in try Row.fetchAll(
      db.cachedStatement(sql: "SELECT id, name FROM threads WHERE pid = ? AND tid = ?"),
      arguments: [pid, tid])
    where (row[1] as String) == name {
      found = row[0]
    }
    let id: Int64
    if let found {
      id = found
    } else {
      try db.cachedStatement(
        sql: "INSERT INTO threads(pid, tid, name, last_window) VALUES (?, ?, ?, ?)"
      ).execute(arguments: [pid, tid, name, window])
      id = db.lastInsertedRowID
    }
    threads[key] = id
    mark("threads", id)
    return id
  }

  func sampleSpanID(_ span: SpanContext, window: Int64, _ db: Database) throws -> Int64 {
    if let id = sampleSpans[span] {
      mark("sample_spans", id)
      return id
    }
    var found: Int64?
    for row in try Row.fetchAll(
      db.cachedStatement(
        sql: "SELECT id, trace_id, name FROM sample_spans WHERE span_id = ?"),
      arguments: [Data(span.spanID)])
    where (row[1] as Data).elementsEqual(span.traceID) && (row[2] as String?) == span.name {
      found = row[0]
    }
    let id: Int64
    if let found {
      id = found
    } else {
      try db.cachedStatement(
        sql: "INSERT INTO sample_spans(trace_id, span_id, name, last_window) VALUES (?, ?, ?, ?)"
      ).execute(arguments: [Data(span.traceID), Data(span.spanID), span.name, window])
      id = db.lastInsertedRowID
    }
    sampleSpans[span] = id
    mark("sample_spans", id)
    return id
  }

  /// Marks every record the window used with its id, so retention keeps them as long as the window.
  func markUsed(window: Int64, _ db: Database) throws {
    for (table, ids) in used where !ids.isEmpty {
      let all = Array(ids)
      for start in stride(from: 0, to: all.count, by: 500) {
        let chunk = all[start..<min(start + 500, all.count)]
        try db.execute(
          sql:
            "UPDATE \(table) SET last_window = ? WHERE id IN (\(chunk.map(String.init).joined(separator: ","))) AND last_window < ?",
          arguments: [window, window])
      }
    }
  }
}
