import FlamespanExport
import FlamespanModel
import Foundation

/// The store writes through the one `AtomicFile`, in files only the agent reads.
package typealias StoreWriteError = AtomicFileError

/// Why the store deleted a window: its age (`--retention`), the size cap (`--store-max-bytes`), or a
/// write that found the disk full. Each is counted; none is silent.
package enum StoreEviction: String, CaseIterable, Sendable {
  case retention
  case maximumBytes = "max-bytes"
  case diskFull = "disk-full"
}

/// The file store of earlier agents, kept to test and measure the import (LegacyStoreImport) and to compare
/// with the SQLite store in bench/store; the agent itself writes SQLiteStore.
///
/// One gzipped pprof file (with span labels) and one JSON-lines span file per window,
/// under `profiles/` and `spans/`. The file name is the index: `<startMs>-<endMs>-<id>.<ext>`, so a
/// restart finds everything by listing the directories, and a crash mid-write leaves at most one
/// temporary file (written aside and renamed; removed at the next start). Retention deletes the oldest
/// windows by age, then by size; a write that finds the disk full deletes the oldest windows until it fits.
package final class WindowStore: @unchecked Sendable {
  struct Entry: Sendable, Equatable {
    var startMillis: Int64
    var endMillis: Int64
    var name: String
    var bytes: Int

    /// `<start>-<end>-<id>`, shared by a window's profile and span files.
    var window: String { String(name.prefix { $0 != "." }) }
  }

  package typealias Writer = @Sendable ([UInt8], String) throws(StoreWriteError) -> Void

  /// The store and the export journal share one disk: when it is full, each write asks `makeRoom` to
  /// delete the oldest stored window and tries again, until the write fits or nothing is left to delete.
  static func write(
    _ bytes: [UInt8], to path: String, with writer: Writer, makingRoom makeRoom: () -> Bool
  ) throws(StoreWriteError) {
    while true {
      do {
        try writer(bytes, path)
        return
      } catch {
        guard error.isDiskFull, makeRoom() else { throw error }
      }
    }
  }

  let directory: URL
  let maximumAgeNanos: Int64
  let maximumBytes: Int
  /// `*.tmp` files found and removed when the store was opened: what earlier failures or crashes left.
  let temporaryFilesRemoved: Int
  private let writer: Writer
  private let lock = NSLock()
  private var profiles: [Entry] = []
  private var spanFiles: [Entry] = []
  private var evictions: [StoreEviction: Int] = [:]
  /// Windows decoded for the UI, so its repeated queries do not re-read and re-parse the same files. Filled
  /// by queries only: a window written is not kept decoded, since keeping each one (48, eight minutes of
  /// symbolized windows) grew the agent's heap all through its first minutes (bench/agent/RESULTS.md).
  private var decoded: [String: Profile] = [:]
  private var decodedOrder: [String] = []
  private static let decodedLimit = 12
  private let instance = String(UInt32.random(in: 0...UInt32.max), radix: 36)
  private var sequence = 0

  /// The subdirectories the store owns; `queue/` holds the export queue's journal (ExportJournal).
  static let subdirectories = ["profiles", "spans", "queue"]

  package init(
    directory: String, maximumAgeNanos: Int64, maximumBytes: Int,
    writer: @escaping Writer = { bytes, path throws(StoreWriteError) in
      try AtomicFile.write(bytes, to: path, permissions: 0o600, flush: false)
    }
  ) throws {
    self.directory = URL(fileURLWithPath: directory)
    self.maximumAgeNanos = maximumAgeNanos
    self.maximumBytes = maximumBytes
    self.writer = writer
    var removed = 0
    for sub in Self.subdirectories {
      let url = self.directory.appendingPathComponent(sub)
      try FileManager.default.createDirectory(
        at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
      removed += AtomicFile.removeTemporaryFiles(in: url.path)
    }
    temporaryFilesRemoved = removed
    profiles = list("profiles", suffix: ".pb.gz")
    spanFiles = list("spans", suffix: ".jsonl")
  }

  var windowCount: Int { lock.withLock { profiles.count } }
  package var totalBytes: Int {
    lock.withLock { (profiles + spanFiles).reduce(0) { $0 + $1.bytes } }
  }
  /// Windows deleted so far, by reason.
  var evicted: [StoreEviction: Int] { lock.withLock { evictions } }

  private func list(_ sub: String, suffix: String) -> [Entry] {
    let path = directory.appendingPathComponent(sub).path
    let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
    var entries: [Entry] = []
    for name in names where name.hasSuffix(suffix) {
      let parts = name.dropLast(suffix.count).split(separator: "-")
      guard parts.count == 3, let start = Int64(parts[0]), let end = Int64(parts[1]) else {
        continue
      }
      let size =
        (try? FileManager.default.attributesOfItem(atPath: "\(path)/\(name)")[.size] as? Int) ?? 0
      entries.append(Entry(startMillis: start, endMillis: end, name: name, bytes: size ?? 0))
    }
    return entries.sorted { ($0.startMillis, $0.name) < ($1.startMillis, $1.name) }
  }

  /// A name for a new window, unique in this store: `<startMs>-<endMs>-<id>`. The export journal files the
  /// window's exports under the same name.
  func newWindowName(for profile: Profile) -> String {
    let start = profile.startTimeNanos / 1_000_000
    let end = (profile.startTimeNanos + profile.durationNanos) / 1_000_000
    let id = lock.withLock {
      sequence += 1
      return "\(instance)\(sequence)"
    }
    return "\(start)-\(end)-\(id)"
  }

  package func add(profile: Profile, spans: [HTTPSpan], name: String? = nil) throws {
    let base = name ?? newWindowName(for: profile)
    let start = profile.startTimeNanos / 1_000_000
    let end = (profile.startTimeNanos + profile.durationNanos) / 1_000_000
    let pprof = try Gzip.compress(PprofEncoder.encode(profile))
    var lines = Data()
    let encoder = JSONEncoder()
    for span in spans {
      lines.append(try encoder.encode(span))
      lines.append(0x0A)
    }
    try write(pprof, to: "profiles/\(base).pb.gz")
    if !spans.isEmpty {
      do { try write([UInt8](lines), to: "spans/\(base).jsonl") } catch {
        // Half a window is not kept: its profile goes too.
        unlink(directory.appendingPathComponent("profiles/\(base).pb.gz").path)
        throw error
      }
    }
    lock.withLock {
      profiles.append(
        Entry(startMillis: start, endMillis: end, name: "\(base).pb.gz", bytes: pprof.count))
      if !spans.isEmpty {
        spanFiles.append(
          Entry(startMillis: start, endMillis: end, name: "\(base).jsonl", bytes: lines.count))
      }
      // A clock step backwards can put the new window before others; the lists stay in order.
      if profiles.count > 1, profiles[profiles.count - 2].startMillis > start {
        profiles.sort { ($0.startMillis, $0.name) < ($1.startMillis, $1.name) }
        spanFiles.sort { ($0.startMillis, $0.name) < ($1.startMillis, $1.name) }
      }
    }
    enforceRetention(nowMillis: KernelClock.unixNanos() / 1_000_000)
  }

  /// Writes through the writer; a full disk deletes the oldest stored windows, one at a time, until the
  /// write fits or none is left (then the error is thrown).
  func write(_ bytes: [UInt8], to relative: String) throws(StoreWriteError) {
    try Self.write(
      bytes, to: directory.appendingPathComponent(relative).path, with: writer, makingRoom: makeRoom
    )
  }

  /// Deletes the oldest stored window to free disk space (counted as `disk-full`); false when the store
  /// holds none. The export journal calls it when its own write finds the disk full.
  @discardableResult func makeRoom() -> Bool {
    let doomed: [String] = lock.withLock {
      guard let victim = oldestWindow() else { return [] }
      evictions[.diskFull, default: 0] += 1
      return remove(window: victim).files
    }
    for relative in doomed { unlink(directory.appendingPathComponent(relative).path) }
    return !doomed.isEmpty
  }

  /// The oldest window in either list. Under the lock.
  private func oldestWindow() -> String? {
    switch (profiles.first, spanFiles.first) {
    case (nil, nil): return nil
    case (let profile?, nil): return profile.window
    case (nil, let spans?): return spans.window
    case (let profile?, let spans?):
      return (spans.startMillis, spans.name) < (profile.startMillis, profile.name)
        ? spans.window : profile.window
    }
  }

  /// Takes a window's entries out of the lists and the decoded cache; returns the files to unlink and their
  /// bytes. Under the lock.
  private func remove(window: String) -> (files: [String], bytes: Int) {
    var doomed: [String] = []
    var bytes = 0
    if let index = profiles.firstIndex(where: { $0.window == window }) {
      let entry = profiles.remove(at: index)
      doomed.append("profiles/\(entry.name)")
      bytes += entry.bytes
      decoded[entry.name] = nil
      decodedOrder.removeAll { $0 == entry.name }
    }
    if let index = spanFiles.firstIndex(where: { $0.window == window }) {
      let entry = spanFiles.remove(at: index)
      doomed.append("spans/\(entry.name)")
      bytes += entry.bytes
    }
    return (doomed, bytes)
  }

  func enforceRetention(nowMillis: Int64) {
    var doomed: [String] = []
    lock.withLock {
      let oldest = nowMillis - maximumAgeNanos / 1_000_000
      while let first = oldestWindowEntry(), first.endMillis < oldest {
        evictions[.retention, default: 0] += 1
        doomed += remove(window: first.window).files
      }
      var total = (profiles + spanFiles).reduce(0) { $0 + $1.bytes }
      // The newest window stays even when it alone is over the cap.
      while total > maximumBytes, profiles.count > 1 || spanFiles.count > 1,
        let victim = oldestWindow()
      {
        evictions[.maximumBytes, default: 0] += 1
        let (files, bytes) = remove(window: victim)
        doomed += files
        total -= bytes
      }
    }
    for relative in doomed { unlink(directory.appendingPathComponent(relative).path) }
  }

  /// The entry of the oldest window. Under the lock.
  private func oldestWindowEntry() -> Entry? {
    guard let window = oldestWindow() else { return nil }
    return profiles.first { $0.window == window } ?? spanFiles.first { $0.window == window }
  }

  private func remember(_ name: String, _ profile: Profile) {
    if decoded[name] == nil { decodedOrder.append(name) }
    decoded[name] = profile
    while decodedOrder.count > Self.decodedLimit {
      decoded[decodedOrder.removeFirst()] = nil
    }
  }

  /// The windows that overlap [from, to] (Unix milliseconds), merged into one profile. Past `deadline`
  /// (monotonic nanoseconds) the query stops between two windows and throws.
  package func profile(
    fromMillis: Int64, toMillis: Int64, deadline: UInt64 = .max, filter: (ProfileSample) -> Bool
  ) throws(StoreQueryOverBudget) -> Profile {
    let entries = lock.withLock {
      profiles.filter { $0.endMillis >= fromMillis && $0.startMillis <= toMillis }
    }
    var merged: [ProfileSample: Int64] = [:]
    var period: Int64 = 1_000_000_000 / 19
    var start = Int64.max
    var end = Int64.min
    for (index, entry) in entries.enumerated() {
      if KernelClock.monotonicNanos() > deadline {
        throw StoreQueryOverBudget(windowsRead: index, windowsTotal: entries.count)
      }
      guard let window = load(entry.name) else { continue }
      period = window.periodNanos
      start = min(start, window.startTimeNanos)
      end = max(end, window.startTimeNanos + window.durationNanos)
      for sample in window.samples where filter(sample) {
        var key = sample
        key.count = 0
        merged[key, default: 0] += sample.count
      }
    }
    let samples = merged.map { sample, count in
      var sample = sample
      sample.count = count
      return sample
    }
    return Profile(
      samples: samples, periodNanos: period,
      startTimeNanos: start == .max ? fromMillis * 1_000_000 : start,
      durationNanos: end == .min ? 0 : end - start)
  }

  private func load(_ name: String) -> Profile? {
    if let cached = lock.withLock({ decoded[name] }) { return cached }
    let path = directory.appendingPathComponent("profiles/\(name)").path
    guard let profile = try? ProfileReader.read(from: path) else { return nil }
    lock.withLock { remember(name, profile) }
    return profile
  }

  /// Spans that ended in windows overlapping [from, to], newest windows first; past `deadline` the query
  /// stops between two windows and throws.
  package func spans(fromMillis: Int64, toMillis: Int64, deadline: UInt64 = .max)
    throws(StoreQueryOverBudget) -> [HTTPSpan]
  {
    let entries = lock.withLock {
      spanFiles.filter { $0.endMillis >= fromMillis && $0.startMillis <= toMillis }
    }
    let decoder = JSONDecoder()
    var spans: [HTTPSpan] = []
    for (index, entry) in entries.reversed().enumerated() {
      if KernelClock.monotonicNanos() > deadline {
        throw StoreQueryOverBudget(windowsRead: index, windowsTotal: entries.count)
      }
      guard
        let data = FileManager.default.contents(
          atPath: directory.appendingPathComponent("spans/\(entry.name)").path)
      else { continue }
      for line in data.split(separator: 0x0A) {
        if let span = try? decoder.decode(HTTPSpan.self, from: line) { spans.append(span) }
      }
    }
    return spans
  }

  var oldestMillis: Int64? { lock.withLock { profiles.first?.startMillis } }
}

/// A store query stopped at its deadline, after reading `windowsRead` of the `windowsTotal` it needed.
package struct StoreQueryOverBudget: Error, Sendable {
  package var windowsRead: Int
  package var windowsTotal: Int
}
