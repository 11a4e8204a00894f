import FlamespanExport
import FlamespanModel
import Foundation

/// The file store of earlier agents (`profiles/<window>.pb.gz` and `spans/<window>.jsonl`), imported into
/// the SQLite store at start, newest window first so the recent past is queryable soonest. A window's
/// files are deleted only after its transaction committed, and the import skips windows stored already,
/// so a crash mid-import loses nothing and repeats nothing. Files that cannot be read are moved to
/// `legacy-unreadable/` and named in the log, never deleted.
package enum LegacyStoreImport {
  package struct Report: Sendable, Equatable {
    package var imported = 0
    /// Past the retention age: deleted, counted as retention evictions.
    package var expired = 0
    /// Moved aside to `legacy-unreadable/`.
    package var unreadable = 0
  }

  private struct LegacyWindow {
    var name: String
    var startMillis: Int64
    var endMillis: Int64
    var profile: String?
    var spans: String?
  }

  /// True when the directory holds windows in the old file format.
  package static func hasLegacyFiles(in directory: URL) -> Bool {
    !windows(in: directory).isEmpty
  }

  private static func windows(in directory: URL) -> [LegacyWindow] {
    var byName: [String: LegacyWindow] = [:]
    for (sub, suffix) in [("profiles", ".pb.gz"), ("spans", ".jsonl")] {
      let folder = directory.appendingPathComponent(sub).path
      for file in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
      where file.hasSuffix(suffix) {
        let name = String(file.dropLast(suffix.count))
        let parts = name.split(separator: "-")
        guard parts.count == 3, let start = Int64(parts[0]), let end = Int64(parts[1]) else {
          continue
        }
        var window =
          byName[name] ?? LegacyWindow(name: name, startMillis: start, endMillis: end)
        if sub == "profiles" {
          window.profile = "\(folder)/\(file)"
        } else {
          window.spans = "\(folder)/\(file)"
        }
        byName[name] = window
      }
    }
    return byName.values.sorted { ($0.startMillis, $0.name) > ($1.startMillis, $1.name) }
  }

  /// Imports every old-format window into `store`; `log` hears progress and every file moved aside.
  @discardableResult
  package static func run(into store: SQLiteStore, log: (String) -> Void) -> Report {
    let pending = windows(in: store.directory)
    guard !pending.isEmpty else { return Report() }
    log(
      "store: importing \(pending.count) window(s) of the earlier file format into \(SQLiteStore.fileName), newest first"
    )
    var report = Report()
    let oldestKept = KernelClock.unixNanos() / 1_000_000 - store.maximumAgeNanos / 1_000_000
    let started = KernelClock.monotonicNanos()
    for (index, window) in pending.enumerated() {
      let files = [window.profile, window.spans].compactMap { $0 }
      if window.endMillis < oldestKept {
        for file in files { unlink(file) }
        report.expired += 1
        continue
      }
      do {
        let profile =
          try window.profile.map { path throws -> Profile in try ProfileReader.read(from: path) }
          ?? Profile(
            samples: [], periodNanos: 1_000_000_000 / 19,
            startTimeNanos: window.startMillis * 1_000_000,
            durationNanos: (window.endMillis - window.startMillis) * 1_000_000)
        let spans = try window.spans.map(readSpans) ?? []
        try store.add(profile: profile, spans: spans, name: window.name)
        for file in files { unlink(file) }
        report.imported += 1
      } catch let error as SQLiteStoreError {
        // The store itself failed (a full disk past what eviction frees): stop, keep the files for
        // the next start.
        log(
          "store: import stopped after \(report.imported) window(s): \(error); the rest stay in profiles/ and spans/ for the next start"
        )
        return report
      } catch {
        moveAside(files, in: store.directory, log: log, reason: "\(error)")
        report.unreadable += 1
      }
      if (index + 1) % 1000 == 0 {
        log(
          "store: imported \(index + 1) of \(pending.count) window(s) in \(String(format: "%.1f", Double(KernelClock.monotonicNanos() - started) / 1e9)) s"
        )
      }
    }
    for sub in ["profiles", "spans"] { rmdir(store.directory.appendingPathComponent(sub).path) }
    log(
      "store: import done: \(report.imported) window(s) imported, \(report.expired) past --retention deleted, "
        + "\(report.unreadable) unreadable moved to legacy-unreadable/")
    return report
  }

  struct UnreadableSpans: Error, CustomStringConvertible {
    var path: String
    var line: Int
    var reason: String
    var description: String { "\(path) line \(line): \(reason)" }
  }

  private static func readSpans(_ path: String) throws -> [HTTPSpan] {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw UnreadableSpans(path: path, line: 0, reason: "cannot read the file")
    }
    let decoder = JSONDecoder()
    var spans: [HTTPSpan] = []
    for (index, line) in data.split(separator: 0x0A).enumerated() {
      do { spans.append(try decoder.decode(HTTPSpan.self, from: line)) } catch {
        throw UnreadableSpans(path: path, line: index + 1, reason: "\(error)")
      }
    }
    return spans
  }

  private static func moveAside(
    _ files: [String], in directory: URL, log: (String) -> Void, reason: String
  ) {
    let aside = directory.appendingPathComponent("legacy-unreadable")
    try? FileManager.default.createDirectory(at: aside, withIntermediateDirectories: true)
    for file in files {
      let target = aside.appendingPathComponent(URL(fileURLWithPath: file).lastPathComponent).path
      if rename(file, target) == 0 {
        log("store: cannot import \(file) (\(reason)): moved to \(target); nothing was deleted")
      } else {
        log("store: cannot import \(file) (\(reason)) nor move it aside: left in place")
      }
    }
  }
}
