import FlamespanExport
import FlamespanModel
import Foundation

/// The local store: one gzipped pprof file (with span labels) and one JSON-lines span file per window,
/// under `profiles/` and `spans/`. The file name is the index: `<startMs>-<endMs>-<id>.<ext>`, so a
/// restart finds everything by listing the directories, and a crash mid-write leaves at most one
/// temporary file (written aside and renamed). Retention deletes the oldest windows by age, then by size.
final class WindowStore: @unchecked Sendable {
  struct Entry: Sendable, Equatable {
    var startMillis: Int64
    var endMillis: Int64
    var name: String
    var bytes: Int
  }

  let directory: URL
  let maximumAgeNanos: Int64
  let maximumBytes: Int
  private let lock = NSLock()
  private var profiles: [Entry] = []
  private var spanFiles: [Entry] = []
  /// Windows decoded for the UI, so its repeated queries do not re-read and re-parse the same files. Filled
  /// by queries only: a window written is not kept decoded, since keeping each one (48, eight minutes of
  /// symbolized windows) grew the agent's heap all through its first minutes (bench/agent/RESULTS.md).
  private var decoded: [String: Profile] = [:]
  private var decodedOrder: [String] = []
  private static let decodedLimit = 12
  private let instance = String(UInt32.random(in: 0...UInt32.max), radix: 36)
  private var sequence = 0

  init(directory: String, maximumAgeNanos: Int64, maximumBytes: Int) throws {
    self.directory = URL(fileURLWithPath: directory)
    self.maximumAgeNanos = maximumAgeNanos
    self.maximumBytes = maximumBytes
    for sub in ["profiles", "spans"] {
      try FileManager.default.createDirectory(
        at: self.directory.appendingPathComponent(sub), withIntermediateDirectories: true,
        attributes: [.posixPermissions: 0o700])
    }
    profiles = list("profiles", suffix: ".pb.gz")
    spanFiles = list("spans", suffix: ".jsonl")
  }

  var windowCount: Int { lock.withLock { profiles.count } }
  var totalBytes: Int { lock.withLock { (profiles + spanFiles).reduce(0) { $0 + $1.bytes } } }

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

  func add(profile: Profile, spans: [AgentSpan]) throws {
    let start = profile.startTimeNanos / 1_000_000
    let end = (profile.startTimeNanos + profile.durationNanos) / 1_000_000
    let id = lock.withLock {
      sequence += 1
      return "\(instance)\(sequence)"
    }
    let base = "\(start)-\(end)-\(id)"
    let pprof = try Gzip.compress(PprofEncoder.encode(profile))
    try write(pprof, to: "profiles/\(base).pb.gz")
    var lines = Data()
    let encoder = JSONEncoder()
    for span in spans {
      lines.append(try encoder.encode(span))
      lines.append(0x0A)
    }
    if !spans.isEmpty { try write([UInt8](lines), to: "spans/\(base).jsonl") }
    lock.withLock {
      profiles.append(
        Entry(startMillis: start, endMillis: end, name: "\(base).pb.gz", bytes: pprof.count))
      if !spans.isEmpty {
        spanFiles.append(
          Entry(startMillis: start, endMillis: end, name: "\(base).jsonl", bytes: lines.count))
      }
    }
    enforceRetention(nowMillis: Monotonic.realtimeNanos() / 1_000_000)
  }

  private func write(_ bytes: [UInt8], to relative: String) throws {
    let url = directory.appendingPathComponent(relative)
    let temporary = directory.appendingPathComponent(relative + ".tmp")
    try Data(bytes).write(to: temporary)
    if rename(temporary.path, url.path) != 0 {
      throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path])
    }
  }

  func enforceRetention(nowMillis: Int64) {
    var doomed: [String] = []
    lock.withLock {
      let oldest = nowMillis - maximumAgeNanos / 1_000_000
      while let first = profiles.first, first.endMillis < oldest {
        doomed.append("profiles/\(first.name)")
        profiles.removeFirst()
      }
      while let first = spanFiles.first, first.endMillis < oldest {
        doomed.append("spans/\(first.name)")
        spanFiles.removeFirst()
      }
      var total = (profiles + spanFiles).reduce(0) { $0 + $1.bytes }
      while total > maximumBytes, profiles.count > 1 || spanFiles.count > 1 {
        // Whichever kind holds the older window goes first.
        let takeSpans =
          profiles.isEmpty
          || (!spanFiles.isEmpty && spanFiles[0].startMillis < profiles[0].startMillis)
        if takeSpans {
          let entry = spanFiles.removeFirst()
          total -= entry.bytes
          doomed.append("spans/\(entry.name)")
        } else {
          let entry = profiles.removeFirst()
          total -= entry.bytes
          doomed.append("profiles/\(entry.name)")
        }
      }
      for name in doomed where decoded[String(name.split(separator: "/").last!)] != nil {
        decoded[String(name.split(separator: "/").last!)] = nil
      }
    }
    for relative in doomed { unlink(directory.appendingPathComponent(relative).path) }
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
  func profile(
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
      if Monotonic.now() > deadline {
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
  func spans(fromMillis: Int64, toMillis: Int64, deadline: UInt64 = .max)
    throws(StoreQueryOverBudget) -> [AgentSpan]
  {
    let entries = lock.withLock {
      spanFiles.filter { $0.endMillis >= fromMillis && $0.startMillis <= toMillis }
    }
    let decoder = JSONDecoder()
    var spans: [AgentSpan] = []
    for (index, entry) in entries.reversed().enumerated() {
      if Monotonic.now() > deadline {
        throw StoreQueryOverBudget(windowsRead: index, windowsTotal: entries.count)
      }
      guard
        let data = FileManager.default.contents(
          atPath: directory.appendingPathComponent("spans/\(entry.name)").path)
      else { continue }
      for line in data.split(separator: 0x0A) {
        if let span = try? decoder.decode(AgentSpan.self, from: line) { spans.append(span) }
      }
    }
    return spans
  }

  var oldestMillis: Int64? { lock.withLock { profiles.first?.startMillis } }
}

/// A store query stopped at its deadline, after reading `windowsRead` of the `windowsTotal` it needed.
struct StoreQueryOverBudget: Error {
  var windowsRead: Int
  var windowsTotal: Int
}
