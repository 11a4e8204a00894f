import FlamespanAgent
import FlamespanExport
import FlamespanModel
import Foundation

/// flamespan-store-bench: see bench/store/README.md.
///   generate DIR --hours H --rate R [--format sqlite|files|both]
///   query DIR [--format sqlite|files] [--runs N]
///   crash-writer DIR      (writes windows until killed; prints "committed NAME" after each commit)
let arguments = Array(CommandLine.arguments.dropFirst())

func option(_ name: String, default value: String) -> String {
  guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else {
    return value
  }
  return arguments[index + 1]
}

func fail(_ message: String) -> Never {
  FileHandle.standardError.write(Data("flamespan-store-bench: \(message)\n".utf8))
  exit(64)
}

guard arguments.count >= 2 else {
  fail(
    "usage: generate DIR --hours H --rate R [--format sqlite|files|both] | query DIR [--format sqlite|files] [--runs N] | crash-writer DIR"
  )
}
let directory = arguments[1]
let day: Int64 = 24 * 3600 * 1_000_000_000

switch arguments[0] {
case "crash-writer":
  // Small windows, so a kill lands in the middle of a commit often.
  let store: SQLiteStore
  do {
    store = try SQLiteStore(directory: directory, maximumAgeNanos: 2 * day, maximumBytes: 1 << 40)
  } catch { fail("\(error)") }
  var generator = GeneratedWindows(
    spansPerSecond: 20, busyCores: 2, seed: UInt64(getpid()) &* 0x9E37_79B9)
  var start = KernelClock.unixNanos() - day
  while true {
    let window = generator.window(startNanos: start)
    let name = store.newWindowName(for: window.profile)
    do { try store.add(profile: window.profile, spans: window.spans, name: name) } catch {
      fail("\(error)")
    }
    // Unbuffered: the line is out before the next window begins, so a kill never hides a commit.
    FileHandle.standardOutput.write(Data("committed \(name)\n".utf8))
    start += GeneratedWindows.windowNanos
  }

case "generate":
  let hours = Double(option("--hours", default: "1")) ?? 1
  let rate = Int(option("--rate", default: "300")) ?? 300
  let format = option("--format", default: "both")
  try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
  let windows = Int(hours * 3600 / 10)
  let end = KernelClock.unixNanos() / GeneratedWindows.windowNanos * GeneratedWindows.windowNanos
  var generator = GeneratedWindows(spansPerSecond: rate)
  var sqlite: SQLiteStore?
  var files: WindowStore?
  do {
    if format != "files" {
      sqlite = try SQLiteStore(
        directory: directory + "/sqlite", maximumAgeNanos: day, maximumBytes: 1 << 40)
    }
    if format != "sqlite" {
      files = try WindowStore(
        directory: directory + "/files", maximumAgeNanos: day, maximumBytes: 1 << 40)
    }
  } catch { fail("\(error)") }
  var sqliteCPU: [Double] = []
  var filesCPU: [Double] = []
  var spans = 0
  var samples = 0
  var sampleRows = 0
  for index in 0..<windows {
    let start = end - Int64(windows - index) * GeneratedWindows.windowNanos
    let window = generator.window(startNanos: start)
    spans += window.spans.count
    samples += Int(window.profile.totalCount)
    sampleRows += window.profile.samples.count
    do {
      if let sqlite {
        let before = BenchClock.threadCPUNanos()
        try sqlite.add(profile: window.profile, spans: window.spans)
        sqliteCPU.append(Double(BenchClock.threadCPUNanos() - before) / 1e6)
      }
      if let files {
        let before = BenchClock.threadCPUNanos()
        try files.add(profile: window.profile, spans: window.spans)
        filesCPU.append(Double(BenchClock.threadCPUNanos() - before) / 1e6)
      }
    } catch { fail("window \(index): \(error)") }
    if (index + 1) % 60 == 0 {
      FileHandle.standardError.write(Data("\(index + 1)/\(windows) windows\n".utf8))
    }
  }
  print(
    "generated \(windows) windows of 10 s: \(spans) spans, \(samples) samples in \(sampleRows) sample rows"
  )
  for (label, cpu) in [("sqlite", sqliteCPU), ("files", filesCPU)] where !cpu.isEmpty {
    let mean = cpu.reduce(0, +) / Double(cpu.count)
    print(
      String(
        format:
          "%@ write CPU per window: mean %.1f ms, p50 %.1f ms, p99 %.1f ms; %.3f%% of a core at one window per 10 s",
        label, mean, BenchStats.percentile(cpu, 50), BenchStats.percentile(cpu, 99),
        mean / 10_000 * 100))
  }
  if let sqlite {
    print("sqlite bytes on disk: \(sqlite.totalBytes)")
    for line
      in (try? StoreBenchSizes.breakdown(
        sqlite, spans: spans, sampleRows: sampleRows, samples: samples)) ?? []
    {
      print(line)
    }
  }
  if let files {
    print(
      String(
        format: "files bytes on disk: %d (%.1f bytes per span and sample row together)",
        files.totalBytes,
        Double(files.totalBytes) / Double(max(spans + sampleRows, 1))))
  }

case "query":
  let format = option("--format", default: "sqlite")
  let runs = Int(option("--runs", default: "100")) ?? 100
  do {
    try QueryBench(directory: directory, format: format, runs: runs).run()
  } catch { fail("\(error)") }

default:
  fail("unknown command \(arguments[0])")
}
