import FlamespanModel
import FlamespanTestSupport
import Foundation
import Testing

@testable import FlamespanAgent

/// The SQLite store as a unit, on real files: its schema and settings, what each query answers, retention
/// by age and size (and the interned records it leaves behind), and the import of the earlier file format.
struct SQLiteStoreTests {
  static let day: Int64 = 24 * 3600 * 1_000_000_000

  static func newStore(_ directory: URL, maximumBytes: Int = 1 << 30) throws -> SQLiteStore {
    try SQLiteStore(directory: directory.path, maximumAgeNanos: day, maximumBytes: maximumBytes)
  }

  static let binary = Mapping(
    start: 0x5555_0000_0000, limit: 0x5555_0010_0000, fileOffset: 0x1000, path: "/usr/bin/server",
    buildID: BuildID(hex: "0123456789abcdef0123"), kind: .file, device: 8, inode: 42)

  static func location(_ index: Int, function: String? = nil) -> ResolvedLocation {
    ResolvedLocation(
      address: binary.start + UInt64(index) * 0x10, mapping: binary,
      frames: [
        SourceFrame(function: "inlined_\(index)", file: "src/a.c", line: index, column: 3),
        SourceFrame(function: function ?? "function_\(index)", systemName: "_Z\(index)"),
      ])
  }

  static let oddLocations = [
    ResolvedLocation(
      address: 0xffff_ffff_8100_0000, mapping: .kernel,
      frames: [SourceFrame(function: "do_syscall_64")],
      frameType: .kernel),
    ResolvedLocation(
      address: 0x7f00_0000_1234,
      mapping: Mapping(
        start: 0x7f00_0000_0000, limit: 0x7f00_0010_0000, fileOffset: 0, path: "[anon]",
        kind: .anonymous),
      frames: [SourceFrame(function: "jitted_loop")], frameType: .v8JavaScript, isJIT: true),
    ResolvedLocation(address: 0x1234, mapping: nil, frames: [], unknownReason: "no mapping"),
  ]

  static func traceID(_ seed: UInt8) -> [UInt8] { (0..<16).map { UInt8($0) &+ seed } }
  static func spanID(_ seed: UInt8) -> [UInt8] { (0..<8).map { UInt8($0) &* 3 &+ seed } }

  /// A window of six samples: two in span A of trace 1, one in span B of trace 1, one in trace 2, two
  /// outside any span; with the spans A, B and C.
  static func window(startSeconds: Int64, pid: Int32 = 7) -> (profile: Profile, spans: [HTTPSpan]) {
    let start = startSeconds * 1_000_000_000
    let a = SpanContext(traceID: traceID(1), spanID: spanID(1), name: "GET /a")
    let b = SpanContext(traceID: traceID(1), spanID: spanID(2), name: "GET /b")
    let c = SpanContext(traceID: traceID(2), spanID: spanID(3), name: "POST /c")
    let samples = [
      ProfileSample(
        stack: [location(1), location(2)], pid: pid, tid: pid, threadName: "main", span: a, count: 3
      ),
      ProfileSample(
        stack: [location(3), location(2)], pid: pid, tid: pid + 1, threadName: "worker", span: a,
        count: 1),
      ProfileSample(
        stack: [location(4)] + oddLocations, pid: pid, tid: pid + 1, threadName: "worker", span: b,
        count: 2),
      ProfileSample(
        stack: [location(1), location(2)], pid: pid + 1, tid: pid + 1, threadName: "other", span: c,
        count: 5),
      ProfileSample(stack: [location(5)], pid: pid, tid: pid, threadName: "main", count: 7),
      ProfileSample(stack: oddLocations, pid: pid + 1, tid: pid + 2, threadName: "gc", count: 1),
    ]
    func span(
      _ context: SpanContext, parent: [UInt8]?, offsetMillis: Int64, millis: Int64, status: Int
    ) -> HTTPSpan {
      HTTPSpan(
        traceID: context.traceID, spanID: context.spanID, parentSpanID: parent, kind: .server,
        method: String(context.name!.split(separator: " ")[0]),
        path: String(context.name!.split(separator: " ")[1]),
        host: "example.test", status: status, startUnixNanos: start + offsetMillis * 1_000_000,
        endUnixNanos: start + (offsetMillis + millis) * 1_000_000, pid: pid, tid: pid,
        peerAddress: "10.1.2.3", peerPort: 51000, serverPort: 8080, bytesIn: 120, bytesOut: 4096,
        cpuSamples: 4)
    }
    let spans = [
      span(a, parent: nil, offsetMillis: 100, millis: 900, status: 200),
      span(b, parent: a.spanID, offsetMillis: 200, millis: 300, status: 503),
      span(c, parent: nil, offsetMillis: 50, millis: 2000, status: 200),
    ]
    return (
      Profile(
        samples: samples, periodNanos: 52_631_578, startTimeNanos: start,
        durationNanos: 10_000_000_000),
      spans
    )
  }

  /// Samples as comparable values: order does not matter, equal samples are summed.
  static func bag(_ samples: [ProfileSample]) -> [ProfileSample: Int64] {
    var bag: [ProfileSample: Int64] = [:]
    for sample in samples {
      var key = sample
      key.count = 0
      bag[key, default: 0] += sample.count
    }
    return bag
  }

  static func nowSeconds() -> Int64 { Int64(Date().timeIntervalSince1970) }

  @Test func aNewStoreIsWALWithIncrementalVacuumAtTheNewestSchemaVersion() throws {
    let directory = try TestEnvironment.temporaryDirectory("sqlite-schema")
    let store = try Self.newStore(directory)
    #expect(try store.pragma("journal_mode") == "wal")
    #expect(try store.pragma("auto_vacuum") == "2", "incremental")
    #expect(try store.pragma("user_version") == String(SQLiteStoreSchema.version))
    #expect(try store.integrityCheck() == "ok")
    try store.add(profile: Self.window(startSeconds: Self.nowSeconds() - 60).profile, spans: [])
    // Reopened, nothing is migrated again and the window is still there.
    let reopened = try Self.newStore(directory)
    #expect(reopened.windowCount == 1)
    #expect(try reopened.windowNames().count == 1)
    #expect(try reopened.rowCount("grdb_migrations") == 1, "v1, applied once")
  }

  @Test(.requires(.tool("sqlite3"))) func aStoreWrittenByANewerAgentIsRefusedWithWhatToDo() throws {
    let directory = try TestEnvironment.temporaryDirectory("sqlite-newer")
    _ = try Self.newStore(directory)
    let path = directory.appendingPathComponent(SQLiteStore.fileName).path
    let bump = try Run.command(["sqlite3", path, "PRAGMA user_version = 99"])
    try #require(bump.status == 0, "sqlite3: \(bump.stderr)")
    do {
      _ = try Self.newStore(directory)
      Issue.record("a store of schema version 99 was opened")
    } catch {
      #expect("\(error)".contains("schema version 99"), "\(error)")
      #expect("\(error)".contains("another --store"), "\(error)")
    }
  }

  @Test func aFileThatIsNotAStoreIsRefusedWithWhatToDo() throws {
    let directory = try TestEnvironment.temporaryDirectory("sqlite-garbage")
    try Data(repeating: 0x5A, count: 8192).write(
      to: directory.appendingPathComponent(SQLiteStore.fileName))
    do {
      _ = try Self.newStore(directory)
      Issue.record("a file of garbage was opened as a store")
    } catch {
      #expect("\(error)".contains("move"), "\(error)")
    }
  }

  @Test func profilesComeBackAsTheyWereWrittenAndMergeOverARange() throws {
    let directory = try TestEnvironment.temporaryDirectory("sqlite-profile")
    let store = try Self.newStore(directory)
    let now = Self.nowSeconds()
    let first = Self.window(startSeconds: now - 120)
    let second = Self.window(startSeconds: now - 60)
    try store.add(profile: first.profile, spans: first.spans)
    try store.add(profile: second.profile, spans: second.spans)

    let one = try store.profile(fromMillis: (now - 115) * 1000, toMillis: (now - 112) * 1000)
    #expect(Self.bag(one.samples) == Self.bag(first.profile.samples))
    #expect(one.startTimeNanos == first.profile.startTimeNanos)
    #expect(one.durationNanos == first.profile.durationNanos)
    #expect(one.periodNanos == first.profile.periodNanos)

    let both = try store.profile(fromMillis: (now - 200) * 1000, toMillis: now * 1000)
    #expect(Self.bag(both.samples) == Self.bag(first.profile.samples + second.profile.samples))
    #expect(both.totalCount == 2 * first.profile.totalCount)
    #expect(both.durationNanos == 70_000_000_000)

    let process = try store.profile(fromMillis: (now - 200) * 1000, toMillis: now * 1000, pid: 8)
    #expect(
      Self.bag(process.samples)
        == Self.bag((first.profile.samples + second.profile.samples).filter { $0.pid == 8 }))
    #expect(process.totalCount == 12)

    let empty = try store.profile(fromMillis: (now - 5000) * 1000, toMillis: (now - 4000) * 1000)
    #expect(empty.samples.isEmpty)

    let totals = try store.processTotals(fromMillis: (now - 200) * 1000, toMillis: now * 1000)
    #expect(totals.map(\.pid) == [7, 8])
    #expect(totals.map(\.samples) == [26, 12])
  }

  @Test func aTraceIsFoundByItsIdAnywhereInTheRetention() throws {
    let directory = try TestEnvironment.temporaryDirectory("sqlite-trace")
    let store = try Self.newStore(directory)
    let now = Self.nowSeconds()
    let old = Self.window(startSeconds: now - 20 * 3600)
    try store.add(profile: old.profile, spans: old.spans)
    for minutes in 1...5 {
      let recent = Self.window(startSeconds: now - Int64(minutes) * 60, pid: 100 + Int32(minutes))
      // Other traces in the recent windows.
      var spans = recent.spans
      for index in spans.indices { spans[index].traceID = Self.traceID(UInt8(50 + minutes)) }
      try store.add(
        profile: Profile(
          samples: [], periodNanos: 1, startTimeNanos: recent.profile.startTimeNanos,
          durationNanos: 10_000_000_000), spans: spans)
    }

    let spans = try store.spans(traceID: Self.traceID(1), limit: 100)
    #expect(spans.count == 2)
    #expect(spans == [old.spans[0], old.spans[1]], "slowest first, every field back")
    #expect(try store.spans(traceID: Self.traceID(1), limit: 1) == [old.spans[0]])
    #expect(try store.spans(traceID: Self.traceID(99), limit: 100).isEmpty)
    // A range given narrows it.
    #expect(
      try store.spans(traceID: Self.traceID(1), fromMillis: (now - 3600) * 1000, limit: 100).isEmpty
    )

    let trace = try store.traceProfile(traceID: Self.traceID(1))
    #expect(
      Self.bag(trace.samples)
        == Self.bag(old.profile.samples.filter { $0.span?.traceID == Self.traceID(1) }))
    #expect(trace.totalCount == 6)
    #expect(trace.startTimeNanos == old.profile.startTimeNanos)
    let span = try store.traceProfile(traceID: Self.traceID(1), spanID: Self.spanID(2))
    #expect(span.totalCount == 2)
    #expect(span.samples.allSatisfy { $0.span?.spanID == Self.spanID(2) && $0.stack.count == 4 })
    #expect(try store.traceProfile(traceID: Self.traceID(99)).samples.isEmpty)
  }

  @Test func theSlowestSpansOfARangeComeSlowestFirstAndBounded() throws {
    let directory = try TestEnvironment.temporaryDirectory("sqlite-slowest")
    let store = try Self.newStore(directory)
    let now = Self.nowSeconds()
    var all: [HTTPSpan] = []
    for minute in 0..<30 {
      var window = Self.window(startSeconds: now - 1800 + Int64(minute) * 60)
      for index in window.spans.indices {
        window.spans[index].traceID = Self.traceID(UInt8(minute))
        window.spans[index].endUnixNanos += Int64(minute * 3 + index) * 1_000_000
      }
      all += window.spans
      try store.add(profile: window.profile, spans: window.spans)
    }
    let from = (now - 900) * 1000
    let to = now * 1000
    let expected = all.filter {
      $0.endUnixNanos / 1_000_000 >= from && $0.startUnixNanos / 1_000_000 <= to
    }
    .sorted { $0.durationNanos > $1.durationNanos }
    let slowest = try store.slowestSpans(fromMillis: from, toMillis: to, limit: 10)
    #expect(slowest.count == 10)
    #expect(slowest.map(\.durationNanos) == expected.prefix(10).map(\.durationNanos))
    #expect(slowest.allSatisfy { $0.endUnixNanos / 1_000_000 >= from })
    #expect(try store.slowestSpans(fromMillis: from, toMillis: to, pid: 8, limit: 10).isEmpty)
    #expect(
      try store.slowestSpans(fromMillis: from, toMillis: to, pid: 7, limit: 1000).count
        == expected.count)
  }

  @Test func retentionByAgeDeletesWindowsAndTheRecordsOnlyTheyUsed() throws {
    let directory = try TestEnvironment.temporaryDirectory("sqlite-age")
    let store = try Self.newStore(directory)
    let now = Self.nowSeconds()
    let old = Self.window(startSeconds: now - 30 * 3600)
    try store.add(profile: old.profile, spans: old.spans)
    try store.add(profile: Self.window(startSeconds: now - 25 * 3600).profile, spans: [])
    // The recent window shares nothing with the old ones but one stack.
    let recent = Profile(
      samples: [
        ProfileSample(stack: [Self.location(5)], pid: 7, tid: 7, threadName: "main", count: 1)
      ],
      periodNanos: 1, startTimeNanos: (now - 60) * 1_000_000_000, durationNanos: 10_000_000_000)
    try store.add(profile: recent, spans: [])
    #expect(store.windowCount == 1)
    #expect(store.evicted[.retention] == 2)
    #expect(try store.spans(traceID: Self.traceID(1), limit: 10).isEmpty)
    #expect(try store.rowCount("samples") == 1)
    #expect(try store.rowCount("stacks") == 1, "only the stack the kept window uses")
    #expect(try store.rowCount("locations") == 1)
    #expect(try store.rowCount("sample_spans") == 0)
    #expect(try store.rowCount("threads") == 1)
    #expect(try store.pragma("freelist_count") == "0", "freed pages went back to the file system")
    let kept = try store.profile(fromMillis: (now - 120) * 1000, toMillis: now * 1000)
    #expect(Self.bag(kept.samples) == Self.bag(recent.samples), "the shared stack still decodes")
    #expect(try store.integrityCheck() == "ok")
  }

  @Test func theSizeCapDeletesTheOldestWindowsAndTheFileShrinks() throws {
    let directory = try TestEnvironment.temporaryDirectory("sqlite-cap")
    let unbounded = try Self.newStore(directory.appendingPathComponent("all"))
    let now = Self.nowSeconds()
    var generator = SplitMix(seed: 24)
    func bulky(_ index: Int) -> (Profile, [HTTPSpan]) {
      var window = Self.window(startSeconds: now - 3600 + Int64(index) * 10)
      // Many distinct spans and stacks, so each window takes many pages.
      window.spans = (0..<400).map { number in
        var span = window.spans[number % 3]
        span.traceID = (0..<16).map { _ in UInt8(generator.next() & 0xFF) }
        span.spanID = (0..<8).map { _ in UInt8(generator.next() & 0xFF) }
        return span
      }
      window.profile.samples += (0..<200).map { number in
        ProfileSample(
          stack: (0..<10).map {
            Self.location(Int(generator.next() % 5000), function: "f\(index)_\(number)_\($0)")
          },
          pid: 9, tid: 9, threadName: "bulk", count: 1)
      }
      return window
    }
    for index in 0..<20 {
      let (profile, spans) = bulky(index)
      try unbounded.add(profile: profile, spans: spans)
    }
    try unbounded.checkpoint()
    let twenty = unbounded.totalBytes
    let cap = twenty / 4
    let capped = try Self.newStore(directory.appendingPathComponent("capped"), maximumBytes: cap)
    var names: [String] = []
    for index in 0..<20 {
      let (profile, spans) = bulky(index)
      let name = capped.newWindowName(for: profile)
      try capped.add(profile: profile, spans: spans, name: name)
      names.append(name)
    }
    let kept = try capped.windowNames()
    #expect(kept == Array(names.suffix(kept.count)), "the newest are kept")
    #expect((2...8).contains(kept.count), "\(kept.count) kept")
    #expect(capped.evicted[.maximumBytes] == 20 - kept.count)
    try capped.checkpoint()
    #expect(capped.totalBytes < twenty / 2, "the file shrank: \(capped.totalBytes) of \(twenty)")
    #expect(try capped.integrityCheck() == "ok")
  }

  @Test func makingRoomDeletesTheOldestWindowAndCountsIt() throws {
    let directory = try TestEnvironment.temporaryDirectory("sqlite-room")
    let store = try Self.newStore(directory)
    let now = Self.nowSeconds()
    var names: [String] = []
    for index in 0..<3 {
      let window = Self.window(startSeconds: now - 300 + Int64(index) * 60)
      let name = store.newWindowName(for: window.profile)
      try store.add(profile: window.profile, spans: window.spans, name: name)
      names.append(name)
    }
    #expect(store.makeRoom())
    #expect(try store.windowNames() == Array(names.dropFirst()))
    #expect(store.makeRoom() && store.makeRoom())
    #expect(!store.makeRoom(), "nothing left to delete")
    #expect(store.evicted[.diskFull] == 3 && store.windowCount == 0)
  }

  @Test func theEarlierFileFormatIsImportedOnceAndNothingIsLost() throws {
    let directory = try TestEnvironment.temporaryDirectory("sqlite-import")
    let now = Self.nowSeconds()
    let legacy = try WindowStore(
      directory: directory.path, maximumAgeNanos: 2 * Self.day, maximumBytes: 1 << 30)
    var written: [(name: String, window: (profile: Profile, spans: [HTTPSpan]))] = []
    for index in 0..<4 {
      let window = Self.window(
        startSeconds: now - 3600 + Int64(index) * 600, pid: 20 + Int32(index))
      let name = legacy.newWindowName(for: window.profile)
      try legacy.add(profile: window.profile, spans: index == 2 ? [] : window.spans, name: name)
      written.append((name, window))
    }
    // One window past the new retention (24 h), and one damaged span file.
    let expired = Self.window(startSeconds: now - 30 * 3600)
    try legacy.add(profile: expired.profile, spans: expired.spans)
    let damaged = Self.window(startSeconds: now - 7200)
    let damagedName = legacy.newWindowName(for: damaged.profile)
    try legacy.add(profile: damaged.profile, spans: damaged.spans, name: damagedName)
    try Data("{\"traceID\": \"nonsense\"}\n".utf8).write(
      to: directory.appendingPathComponent("spans/\(damagedName).jsonl"))

    // Each window as the file store answered it (pprof keeps neither device and inode nor frame types).
    var before: [String: Profile] = [:]
    for (name, window) in written {
      let start = window.profile.startTimeNanos / 1_000_000
      before[name] = try legacy.profile(fromMillis: start + 1, toMillis: start + 2) { _ in true }
    }
    let store = try Self.newStore(directory)
    #expect(LegacyStoreImport.hasLegacyFiles(in: directory))
    for (name, profile) in before { #expect(!profile.samples.isEmpty, "\(name)") }
    var log: [String] = []
    let report = LegacyStoreImport.run(into: store) { log.append($0) }
    #expect(report == LegacyStoreImport.Report(imported: 4, expired: 1, unreadable: 1), "\(log)")
    #expect(try Set(store.windowNames()) == Set(written.map(\.name)))
    for (name, window) in written {
      let start = window.profile.startTimeNanos / 1_000_000
      let stored = try store.profile(fromMillis: start + 1, toMillis: start + 2)
      #expect(Self.bag(stored.samples) == Self.bag(before[name]!.samples), "\(name)")
      #expect(stored.totalCount == window.profile.totalCount)
    }
    #expect(
      try store.spans(traceID: Self.traceID(1), limit: 100).count == 6,
      "three windows with spans A and B")
    #expect(!LegacyStoreImport.hasLegacyFiles(in: directory), "imported files are deleted")
    let aside = try FileManager.default.contentsOfDirectory(
      atPath: directory.appendingPathComponent("legacy-unreadable").path
    ).sorted()
    #expect(aside == ["\(damagedName).jsonl", "\(damagedName).pb.gz"])
    #expect(
      log.contains { $0.contains("\(damagedName).jsonl") && $0.contains("moved to") }, "\(log)")

    // A second run finds nothing; a window already stored is not stored twice.
    #expect(LegacyStoreImport.run(into: store) { _ in } == LegacyStoreImport.Report())
    let again = try WindowStore(
      directory: directory.path, maximumAgeNanos: Self.day, maximumBytes: 1 << 30)
    try again.add(
      profile: written[0].window.profile, spans: written[0].window.spans, name: written[0].name)
    #expect(LegacyStoreImport.run(into: store) { _ in }.imported == 1)
    #expect(store.windowCount == 4)
    #expect(try store.spans(traceID: Self.traceID(1), limit: 100).count == 6)
  }
}
