import FlamespanModel
import Foundation
internal import GRDB

/// Turns aggregated sample rows back into a `Profile`: fetches the stacks, threads and sample spans they
/// name (a few hundred ids per statement), then the locations, mappings and symbols of those stacks, each
/// once per query, so a stack shared by thousands of rows is decoded once and its array shared.
struct StoreProfileDecoder {
  private let db: Database

  init(_ db: Database) { self.db = db }

  /// Rows of `table` by id, `columns` after the id, a chunk of ids per statement.
  private func fetch(_ table: String, _ columns: String, ids: Set<Int64>) throws -> [Int64: Row] {
    var found: [Int64: Row] = [:]
    let all = ids.filter { $0 != 0 }.sorted()
    for start in stride(from: 0, to: all.count, by: 500) {
      let chunk = all[start..<min(start + 500, all.count)]
      for row in try Row.fetchAll(
        db,
        sql:
          "SELECT id, \(columns) FROM \(table) WHERE id IN (\(chunk.map(String.init).joined(separator: ",")))"
      ) {
        found[row[0]] = row.copy()
      }
    }
    return found
  }

  private static func bytes(_ row: Row, _ index: Int) -> [UInt8] { [UInt8](row[index] as Data) }

  func profile(
    _ rows: [(stack: Int64, thread: Int64, span: Int64, count: Int64)], periodNanos: Int64,
    startNanos: Int64, endNanos: Int64
  ) throws -> Profile {
    let stackRows = try fetch("stacks", "body", ids: Set(rows.map(\.stack)))
    var stacks: [Int64: [Int64]] = [:]
    var locationIDs = Set<Int64>()
    for (id, row) in stackRows {
      let ids = try StoreRecords.decodeStack(Self.bytes(row, 1))
      stacks[id] = ids
      locationIDs.formUnion(ids)
    }
    var locationRecords: [Int64: StoreRecords.LocationRecord] = [:]
    for (id, row) in try fetch("locations", "body", ids: locationIDs) {
      locationRecords[id] = try StoreRecords.decodeLocation(Self.bytes(row, 1))
    }
    var mappings: [Int64: Mapping] = [:]
    for (id, row) in try fetch(
      "mappings", "body", ids: Set(locationRecords.values.map(\.mappingID)))
    {
      mappings[id] = try StoreRecords.decodeMapping(Self.bytes(row, 1))
    }
    var symbols: [Int64: [SourceFrame]] = [:]
    for (id, row) in try fetch("symbols", "body", ids: Set(locationRecords.values.map(\.symbolID)))
    {
      symbols[id] = try StoreRecords.decodeSymbolFrames(Self.bytes(row, 1))
    }
    var locations: [Int64: ResolvedLocation] = [:]
    for (id, record) in locationRecords {
      locations[id] = ResolvedLocation(
        address: record.address, mapping: mappings[record.mappingID],
        frames: symbols[record.symbolID] ?? [], unknownReason: record.unknownReason,
        frameType: record.frameType, isJIT: record.isJIT)
    }
    var resolvedStacks: [Int64: [ResolvedLocation]] = [:]
    for (id, ids) in stacks {
      resolvedStacks[id] = ids.compactMap { locations[$0] }
    }
    let threads = try fetch("threads", "pid, tid, name", ids: Set(rows.map(\.thread)))
    let spans = try fetch("sample_spans", "trace_id, span_id, name", ids: Set(rows.map(\.span)))
    var samples: [ProfileSample] = []
    samples.reserveCapacity(rows.count)
    for row in rows {
      guard let stack = resolvedStacks[row.stack], let thread = threads[row.thread] else {
        continue
      }
      let span = spans[row.span].map {
        SpanContext(traceID: Self.bytes($0, 1), spanID: Self.bytes($0, 2), name: $0[3])
      }
      samples.append(
        ProfileSample(
          stack: stack, pid: thread[1], tid: thread[2], threadName: thread[3], span: span,
          count: row.count))
    }
    return Profile(
      samples: samples, periodNanos: periodNanos, startTimeNanos: startNanos,
      durationNanos: max(endNanos - startNanos, 0))
  }
}
