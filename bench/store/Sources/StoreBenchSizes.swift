import FlamespanAgent

/// Bytes on disk per span and per sample, from SQLite's own page accounting.
enum StoreBenchSizes {
  static func breakdown(_ store: SQLiteStore, spans: Int, sampleRows: Int, samples: Int) throws
    -> [String]
  {
    let bytes = try store.bytesByTable()
    let spanBytes = bytes["spans", default: 0]
    let sampleTables = [
      "samples", "sample_spans", "stacks", "locations", "symbols", "mappings", "threads",
    ]
    let sampleBytes = sampleTables.reduce(0) { $0 + bytes[$1, default: 0] }
    var lines = bytes.sorted { $0.value > $1.value }.map { "  \($0.key): \($0.value) bytes" }
    lines.insert(
      "sqlite bytes per span (table and its indexes): \(String(format: "%.1f", Double(spanBytes) / Double(max(spans, 1)))); "
        + "per sample row (samples, sample spans, interned stacks): \(String(format: "%.1f", Double(sampleBytes) / Double(max(sampleRows, 1)))); "
        + "per sample: \(String(format: "%.1f", Double(sampleBytes) / Double(max(samples, 1))))",
      at: 0)
    return lines
  }
}
