import FlamespanModel
import FlamespanTestSupport
import Foundation
import Testing

@testable import FlamespanAgent

/// The agent's local store and export journal as units: eviction order and counting (the size cap and a
/// full disk), temporary files, and journal replay with damaged entries. No privileges needed, but for the
/// one test that mounts a small tmpfs to fill a real disk.
struct StoreAndJournalTests {
  /// A window of `functions` distinct random function names, so its gzipped pprof has a predictable size.
  static func window(startSeconds: Int64, functions: Int = 40) -> Profile {
    var generator = SystemRandomNumberGenerator()
    let samples = (0..<functions).map { index in
      let name = (0..<24).map { _ in "abcdefghijklmnopqrstuvwxyz".randomElement(using: &generator)!
      }
      return ProfileSample(
        stack: [
          ResolvedLocation(
            address: UInt64(0x1000 + index), mapping: nil,
            frames: [SourceFrame(function: String(name))])
        ], pid: 1, tid: 1, threadName: "worker", count: Int64(index + 1))
    }
    return Profile(
      samples: samples, periodNanos: 52_631_578, startTimeNanos: startSeconds * 1_000_000_000,
      durationNanos: 10_000_000_000)
  }

  /// Window start times just before now, so retention (24 h) deletes none of them.
  static func recentStarts(_ count: Int) -> [Int64] {
    let now = Int64(Date().timeIntervalSince1970)
    return (0..<count).map { now - Int64(count - $0) * 10 }
  }

  static func files(_ directory: URL, _ sub: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(
      atPath: directory.appendingPathComponent(sub).path))
      ?? []).sorted()
  }

  static func newStore(
    _ directory: URL, maximumBytes: Int = 1 << 30, writer: WindowStore.Writer? = nil
  )
    throws -> WindowStore
  {
    if let writer {
      return try WindowStore(
        directory: directory.path, maximumAgeNanos: 24 * 3600 * 1_000_000_000,
        maximumBytes: maximumBytes, writer: writer)
    }
    return try WindowStore(
      directory: directory.path, maximumAgeNanos: 24 * 3600 * 1_000_000_000,
      maximumBytes: maximumBytes)
  }

  @Test func theSizeCapEvictsTheOldestWindowsAndCountsEach() throws {
    let directory = try TestEnvironment.temporaryDirectory("store-cap")
    // Measure one window's size, then cap the store at three and a half of them.
    let probe = try Self.newStore(directory.appendingPathComponent("probe"))
    try probe.add(profile: Self.window(startSeconds: Self.recentStarts(1)[0]), spans: [])
    let one = probe.totalBytes
    let store = try Self.newStore(directory.appendingPathComponent("s"), maximumBytes: one * 7 / 2)
    var names: [String] = []
    for start in Self.recentStarts(8) {
      let profile = Self.window(startSeconds: start)
      let name = store.newWindowName(for: profile)
      try store.add(profile: profile, spans: [], name: name)
      names.append(name)
    }
    let kept = Self.files(directory.appendingPathComponent("s"), "profiles")
    #expect(kept == names.suffix(kept.count).map { "\($0).pb.gz" }.sorted(), "the newest are kept")
    #expect(kept.count == store.windowCount && (2...4).contains(kept.count), "\(kept.count) kept")
    #expect(store.totalBytes <= one * 7 / 2)
    #expect(store.evicted[.maximumBytes] == names.count - kept.count, "\(store.evicted)")
    #expect(store.evicted[.diskFull] == nil && store.evicted[.retention] == nil)
  }

  @Test func retentionDeletesWindowsByAgeAndCountsThem() throws {
    let directory = try TestEnvironment.temporaryDirectory("store-age")
    let store = try Self.newStore(directory)
    let now = Int64(Date().timeIntervalSince1970)
    try store.add(profile: Self.window(startSeconds: now - 30 * 3600), spans: [])
    try store.add(profile: Self.window(startSeconds: now - 25 * 3600), spans: [])
    try store.add(profile: Self.window(startSeconds: now - 60), spans: [])
    #expect(store.windowCount == 1)
    #expect(store.evicted[.retention] == 2)
    #expect(Self.files(directory, "profiles").count == 1)
  }

  /// A writer over a pretend disk of `capacity` bytes: ENOSPC when the directory's files and the new one
  /// would not fit, as a real full disk answers.
  static func smallDisk(_ directory: URL, capacity: Int) -> WindowStore.Writer {
    { bytes, path throws(StoreWriteError) in
      var used = 0
      for sub in WindowStore.subdirectories {
        for name in files(directory, sub) {
          let attributes = try? FileManager.default.attributesOfItem(
            atPath: directory.appendingPathComponent("\(sub)/\(name)").path)
          used += (attributes?[.size] as? Int) ?? 0
        }
      }
      if used + bytes.count > capacity {
        throw StoreWriteError(step: "write", path: path + ".tmp", errno: ENOSPC)
      }
      try AtomicFile.write(bytes, to: path)
    }
  }

  @Test func aFullDiskEvictsTheOldestWindowsUntilTheWriteFitsAndCountsThem() throws {
    let directory = try TestEnvironment.temporaryDirectory("store-enospc")
    let probe = try Self.newStore(directory.appendingPathComponent("probe"))
    try probe.add(profile: Self.window(startSeconds: Self.recentStarts(1)[0]), spans: [])
    let one = probe.totalBytes
    let root = directory.appendingPathComponent("s")
    let store = try Self.newStore(root, writer: Self.smallDisk(root, capacity: one * 5 / 2))
    var names: [String] = []
    for start in Self.recentStarts(6) {
      let profile = Self.window(startSeconds: start)
      let name = store.newWindowName(for: profile)
      try store.add(profile: profile, spans: [], name: name)
      names.append(name)
    }
    let kept = Self.files(root, "profiles")
    #expect(kept == names.suffix(kept.count).map { "\($0).pb.gz" }.sorted(), "the newest are kept")
    #expect((1...3).contains(kept.count), "\(kept)")
    #expect(store.evicted[.diskFull] == names.count - kept.count, "\(store.evicted)")
    #expect(store.windowCount == kept.count)

    // A window bigger than the whole disk: everything is evicted trying, then the write fails, counted.
    #expect(throws: StoreWriteError.self) {
      try store.add(
        profile: Self.window(startSeconds: Self.recentStarts(1)[0], functions: 2000), spans: [])
    }
    #expect(store.windowCount == 0 && Self.files(root, "profiles").isEmpty)
    #expect(store.evicted[.diskFull] == names.count)
  }

  /// A real full disk: a 256 KiB tmpfs. Every window is written (older ones evicted to make room) and no
  /// temporary file is ever left behind.
  @Test func aRealFullTmpfsEvictsAndLeavesNoTemporaryFiles() throws {
    guard geteuid() == 0 else {
      print("SKIPPED \(#function): mounting a tmpfs needs root")
      return
    }
    let directory = try TestEnvironment.temporaryDirectory("store-tmpfs")
    let mount = try Run.command([
      "mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", directory.path,
    ])
    guard mount.status == 0 else {
      print("SKIPPED \(#function): cannot mount a tmpfs: \(mount.stderr)")
      return
    }
    defer { _ = try? Run.command(["umount", "-l", directory.path]) }
    let store = try Self.newStore(directory)
    var written = 0
    for start in Self.recentStarts(60) {
      let profile = Self.window(startSeconds: start, functions: 400)
      try store.add(profile: profile, spans: [])
      written += 1
      let leftovers = WindowStore.subdirectories.flatMap { Self.files(directory, $0) }
        .filter { $0.hasSuffix(".tmp") }
      #expect(leftovers.isEmpty, "after window \(written): \(leftovers)")
    }
    let evicted = store.evicted[.diskFull] ?? 0
    print(
      "tmpfs 256 KiB: \(written) windows written, \(evicted) evicted, \(store.windowCount) kept")
    #expect(evicted > 0, "the disk filled")
    #expect(store.windowCount + evicted == written)
    #expect(Self.files(directory, "profiles").count == store.windowCount)
  }

  @Test func temporaryFilesAreRemovedAtStartAndCounted() throws {
    let directory = try TestEnvironment.temporaryDirectory("store-tmp")
    let store = try Self.newStore(directory)
    try store.add(profile: Self.window(startSeconds: Self.recentStarts(1)[0]), spans: [])
    for relative in ["profiles/1-2-a.pb.gz.tmp", "spans/1-2-a.jsonl.tmp", "queue/1-2-a.q.tmp"] {
      #expect(
        FileManager.default.createFile(
          atPath: directory.appendingPathComponent(relative).path, contents: nil))
    }
    let reopened = try Self.newStore(directory)
    #expect(reopened.temporaryFilesRemoved == 3)
    #expect(reopened.windowCount == 1, "the real window is still there")
    let left = WindowStore.subdirectories.flatMap { Self.files(directory, $0) }
    #expect(left.allSatisfy { !$0.hasSuffix(".tmp") }, "\(left)")
  }

  @Test func aWriteThatFailsRemovesItsTemporaryFile() throws {
    let directory = try TestEnvironment.temporaryDirectory("store-atomic")
    let target = directory.appendingPathComponent("window.pb.gz")
    // A non-empty directory where the file should go: the data is written, the rename fails.
    try FileManager.default.createDirectory(
      at: target.appendingPathComponent("occupied"), withIntermediateDirectories: true)
    #expect(throws: StoreWriteError.self) { try AtomicFile.write([1, 2, 3], to: target.path) }
    #expect(!FileManager.default.fileExists(atPath: target.path + ".tmp"))
  }

  // MARK: the export journal

  static func request(_ destination: String, _ body: [UInt8], suffix: String = "") -> ExportRequest
  {
    ExportRequest(
      destination: destination, endpoint: HTTPEndpoint(host: "127.0.0.1", port: 1, target: "/x"),
      headers: [("x-api-key", "secret"), ("Content-Type", "application/x-protobuf")], body: body,
      suffix: suffix, bodyHeaders: [("Content-Type", "application/x-protobuf")])
  }

  @Test func theJournalReplaysOldestFirstWithoutSettledDestinationsOrCredentials() throws {
    let directory = try TestEnvironment.temporaryDirectory("journal")
    let journal = try ExportJournal(directory: directory.path)
    try journal.persist(
      name: "2000-3000-b",
      requests: [Self.request("otlp-profiles", [1, 2]), Self.request("otlp-traces", [3])])
    try journal.persist(
      name: "1000-2000-a",
      requests: [
        Self.request("otlp-profiles", [4]), Self.request("pyroscope", [5], suffix: "/ingest?x=1"),
      ])
    try journal.persist(name: "3000-4000-c", requests: [Self.request("otlp-profiles", [6])])
    journal.markSettled(name: "2000-3000-b", destinations: ["otlp-profiles"])
    journal.markSettled(name: "3000-4000-c", destinations: ["otlp-profiles"])  // all settled
    journal.markSettled(name: "9000-9999-gone", destinations: ["otlp-profiles"])  // orphan marker

    let replay = journal.replay()
    #expect(replay.corrupt == 0)
    #expect(replay.entries.map(\.name) == ["1000-2000-a", "2000-3000-b"])
    #expect(replay.entries[0].requests.map(\.destination) == ["otlp-profiles", "pyroscope"])
    #expect(replay.entries[0].requests[1].suffix == "/ingest?x=1")
    #expect(replay.entries[1].requests.map(\.destination) == ["otlp-traces"])
    #expect(replay.entries[1].requests[0].body == [3])
    #expect(
      replay.entries[1].requests[0].bodyHeaders == [["Content-Type", "application/x-protobuf"]])
    let files = Self.files(directory, "")
    #expect(
      files == ["1000-2000-a.q", "2000-3000-b.q", "2000-3000-b.sent"],
      "settled entries and orphan markers are deleted: \(files)")
    let onDisk = try files.map { try Data(contentsOf: directory.appendingPathComponent($0)) }
    #expect(
      !onDisk.contains { $0.range(of: Data("secret".utf8)) != nil },
      "configured headers stay off disk")
  }

  @Test func damagedJournalEntriesAreSkippedAndCountedNeverACrash() throws {
    let directory = try TestEnvironment.temporaryDirectory("journal-damaged")
    let journal = try ExportJournal(directory: directory.path)
    let requests = [Self.request("otlp-profiles", Array(repeating: 7, count: 50))]
    let whole = ExportJournal.encode(
      requests.map {
        ExportJournal.StoredRequest(
          destination: $0.destination, suffix: $0.suffix, bodyHeaders: [["a", "b"]], body: $0.body)
      })
    // Every truncation and every single-byte flip of an entry is refused by the decoder.
    for length in 0..<whole.count {
      #expect(ExportJournal.decode(Array(whole.prefix(length))) == nil, "truncated to \(length)")
    }
    for index in whole.indices {
      var flipped = whole
      flipped[index] ^= 0x40
      #expect(ExportJournal.decode(flipped) == nil, "byte \(index) flipped")
    }
    #expect(ExportJournal.decode(whole) != nil)

    try journal.persist(name: "1000-1-good", requests: requests)
    try journal.persist(name: "2000-2-badmarker", requests: requests)
    for name in ["3000-3-truncated", "4000-4-flipped", "5000-5-empty", "6000-6-garbage"] {
      try journal.persist(name: name, requests: requests)
    }
    func damage(_ name: String, _ change: ([UInt8]) -> [UInt8]) throws {
      let url = directory.appendingPathComponent(name)
      try Data(change([UInt8](Data(contentsOf: url)))).write(to: url)
    }
    try damage("3000-3-truncated.q") { Array($0.prefix($0.count / 2)) }
    try damage("4000-4-flipped.q") {
      var bytes = $0
      bytes[bytes.count / 2] ^= 1
      return bytes
    }
    try damage("5000-5-empty.q") { _ in [] }
    try damage("6000-6-garbage.q") { _ in Array("not a journal entry at all\n".utf8) }
    try Data([0xFF, 0xFE, 0x0A]).write(
      to: directory.appendingPathComponent("2000-2-badmarker.sent"))

    let replay = journal.replay()
    #expect(replay.corrupt == 5, "four entries and one marker")
    // An unreadable marker means nothing is known to be settled: the whole window is sent again.
    #expect(replay.entries.map(\.name) == ["1000-1-good", "2000-2-badmarker"])
    #expect(replay.entries.allSatisfy { $0.requests.count == 1 })
    #expect(Self.files(directory, "") == ["1000-1-good.q", "2000-2-badmarker.q"])
    #expect(journal.replay().corrupt == 0, "skipped entries are deleted, so counted once")
  }

  static func configuration() throws -> AgentConfiguration {
    var configuration = AgentConfiguration()
    configuration.profilesEndpoint = try HTTPEndpoint(
      parsing: "http://collector:4318/v1development/profiles")
    configuration.pyroscopeEndpoint = try HTTPEndpoint(parsing: "http://pyroscope:4040/")
    configuration.headers = [("x-api-key", "now")]
    configuration.pyroscopeHeaders = [("Authorization", "Bearer p")]
    configuration.queueLimits.maximumWindows = 3
    return configuration
  }

  @Test func restoredWindowsAreRebuiltForTheCurrentConfiguration() throws {
    let directory = try TestEnvironment.temporaryDirectory("journal-routes")
    let journal = try ExportJournal(directory: directory.path)
    try journal.persist(
      name: "1000-2000-a",
      requests: [
        Self.request("otlp-profiles", [1]), Self.request("otlp-traces", [2]),
        Self.request("pyroscope", [3], suffix: "/ingest?name=app&from=1"),
      ])
    try journal.persist(name: "2000-3000-b", requests: [Self.request("otlp-traces", [4])])
    let (batches, unroutable) = Agent.restoredBatches(
      journal.replay().entries, configuration: try Self.configuration())
    #expect(unroutable == ["2000-3000-b"], "traces are no longer configured")
    let batch = try #require(batches.first)
    #expect(batches.count == 1 && batch.name == "1000-2000-a")
    #expect(batch.requests.map(\.destination) == ["otlp-profiles", "pyroscope"])
    #expect(
      batch.requests[0].endpoint.description == "http://collector:4318/v1development/profiles")
    #expect(batch.requests[0].headers.map(\.0) == ["x-api-key", "Content-Type"])
    #expect(batch.requests[0].headers[0].1 == "now")
    #expect(
      batch.requests[1].endpoint.description == "http://pyroscope:4040/ingest?name=app&from=1")
    #expect(batch.requests[1].headers.map(\.0) == ["Authorization", "Content-Type"])
  }

  @Test func aRestoreKeepsTheNewestWindowsWithinTheQueueBound() throws {
    let directory = try TestEnvironment.temporaryDirectory("journal-bound")
    let journal = try ExportJournal(directory: directory.path)
    let names = (1...5).map { "\($0)000-\($0)999-w\($0)" }
    for name in names {
      try journal.persist(name: name, requests: [Self.request("otlp-profiles", [9])])
    }
    let configuration = try Self.configuration()
    let queue = ExportQueue(limits: configuration.queueLimits, journal: journal, log: { _ in })
    let replay = journal.replay()
    let (batches, _) = Agent.restoredBatches(replay.entries, configuration: configuration)
    queue.restore(batches, corrupt: replay.corrupt)
    let counters = queue.snapshot
    #expect(queue.queuedNames == names.suffix(3).map { $0 })
    #expect(counters.windowsRestored == 3 && counters.windowsDropped == 2)
    #expect(counters.windowsEnqueued == 5 && counters.windowsQueued == 3)
    #expect(
      Self.files(directory, "") == names.suffix(3).map { "\($0).q" }, "dropped entries deleted")
  }

  /// One window for two destinations: profiles delivered, traces failing. The journal's marker remembers
  /// the delivered one, so after a stop and a restore only the traces are sent, once.
  @Test func aHalfDeliveredWindowSendsOnlyWhatIsLeftAfterARestart() throws {
    let directory = try TestEnvironment.temporaryDirectory("journal-half")
    // 200 under /ok/, 503 elsewhere.
    let backend = try LoopbackHTTPServer { _, path in path.hasPrefix("/ok/") ? 200 : 503 }
    let port = backend.port
    func endpoint(_ path: String) -> HTTPEndpoint {
      HTTPEndpoint(host: "127.0.0.1", port: port, target: path)
    }
    var limits = ExportQueueLimits()
    limits.initialBackoffNanos = 50_000_000
    limits.maximumBackoffNanos = 200_000_000
    limits.requestTimeoutSeconds = 5
    let queueDirectory = directory.appendingPathComponent("queue")
    let journal = try ExportJournal(directory: queueDirectory.path)
    let queue = ExportQueue(limits: limits, journal: journal, log: { _ in })
    queue.start()
    var profiles = Self.request("otlp-profiles", [1, 2, 3])
    profiles.endpoint = endpoint("/ok/profiles")
    var traces = Self.request("otlp-traces", [4, 5])
    traces.endpoint = endpoint("/down/traces")
    queue.enqueue(ExportBatch(sequence: 1, requests: [profiles, traces], name: "1000-2000-a"))
    let halfway = waitUntil(seconds: 20) {
      let counters = queue.snapshot
      return counters.requestsSent["otlp-profiles"] == 1
        && (counters.exportErrors["otlp-traces"] ?? 0) >= 2
    }
    #expect(halfway, "\(queue.snapshot)")
    #expect(
      queue.drain(until: KernelClock.monotonicNanos()) == 1, "the window is still owed its traces")
    let marker = try String(
      contentsOf: queueDirectory.appendingPathComponent("1000-2000-a.sent"), encoding: .utf8)
    #expect(marker == "otlp-profiles\n")

    var configuration = AgentConfiguration()
    configuration.profilesEndpoint = endpoint("/ok/profiles")
    configuration.tracesEndpoint = endpoint("/ok/traces")
    let replay = journal.replay()
    #expect(replay.entries.map { $0.requests.map(\.destination) } == [["otlp-traces"]])
    let (batches, _) = Agent.restoredBatches(replay.entries, configuration: configuration)
    let restarted = ExportQueue(limits: limits, journal: journal, log: { _ in })
    restarted.restore(batches)
    restarted.start()
    #expect(waitUntil(seconds: 20) { restarted.snapshot.windowsExported == 1 })
    #expect(restarted.drain(until: KernelClock.monotonicNanos()) == 0)
    #expect(Self.files(queueDirectory, "").isEmpty, "a settled window leaves no journal entry")
    let delivered = backend.received.map(\.path).filter { $0.hasPrefix("/ok/") }
    #expect(delivered == ["/ok/profiles", "/ok/traces"], "each destination once: \(delivered)")
  }

  @Test func aJournalWriteOnAFullDiskAsksTheStoreForRoom() throws {
    let directory = try TestEnvironment.temporaryDirectory("journal-enospc")
    let probe = try Self.newStore(directory.appendingPathComponent("probe"))
    try probe.add(profile: Self.window(startSeconds: Self.recentStarts(1)[0]), spans: [])
    let one = probe.totalBytes
    let root = directory.appendingPathComponent("s")
    let writer = Self.smallDisk(root, capacity: one * 3)
    let store = try Self.newStore(root, writer: writer)
    for start in Self.recentStarts(3) {
      try store.add(profile: Self.window(startSeconds: start), spans: [])
    }
    let before = store.windowCount
    let evictedBefore = store.evicted[.diskFull] ?? 0
    let journal = try ExportJournal(
      directory: root.appendingPathComponent("queue").path, writer: writer,
      makeRoom: { store.makeRoom() })
    try journal.persist(
      name: "1-2-q", requests: [Self.request("otlp-profiles", Array(repeating: 1, count: one))])
    #expect(store.windowCount < before, "store windows made room for the queued one")
    #expect((store.evicted[.diskFull] ?? 0) - evictedBefore == before - store.windowCount)
    #expect(journal.replay().entries.map(\.name) == ["1-2-q"])
  }
}
