import FlamespanModel
import FlamespanTestSupport
import Foundation
import Testing

@testable import FlamespanAgent

/// kill -9 while the store is being written, 20 times at random points: after each kill the store opens,
/// passes `PRAGMA integrity_check`, and holds every window the writer had reported committed, in this
/// run and all before. The writer is `flamespan-store-bench crash-writer`, a process of its own, which
/// prints `committed NAME` (flushed) after each window's transaction commits.
struct StoreCrashTests {
  static var writerBinary: String {
    URL(fileURLWithPath: TestEnvironment.flamespanBinary).deletingLastPathComponent()
      .appendingPathComponent("flamespan-store-bench").path
  }

  @Test func twentyKillsAtRandomPointsLeaveAnIntactStoreWithEveryCommittedWindow() throws {
    let binary = Self.writerBinary
    try #require(
      FileManager.default.isExecutableFile(atPath: binary),
      "\(binary) is missing: build it with `swift build --build-tests` (product flamespan-store-bench)"
    )
    let directory = try TestEnvironment.temporaryDirectory("store-kill9")
    let store = directory.appendingPathComponent("store")
    let seed = UInt64(Date().timeIntervalSince1970 * 1000)
    var random = SplitMix(seed: seed)
    print("kill -9 loop seed \(seed)")
    var committed = Set<String>()
    for round in 1...20 {
      let writer = try BackgroundProcess(
        [binary, "crash-writer", store.path], logs: directory, label: "writer-\(round)")
      // Wait for a first commit, then kill at a random point of the writing that follows.
      let first = writer.waitForLine(startingWith: "committed ", seconds: 60)
      try #require(
        first != nil, "round \(round): no window committed: \(writer.stderr.suffix(2000))")
      usleep(useconds_t(random.next() % 1_500_000))
      kill(writer.pid, SIGKILL)
      writer.process.waitUntilExit()
      #expect(writer.process.terminationReason == .uncaughtSignal, "round \(round)")
      let reported = writer.stdout.split(separator: "\n").filter { $0.hasPrefix("committed ") }
        .map { String($0.dropFirst("committed ".count)) }
      committed.formUnion(reported)

      let reopened = try SQLiteStore(
        directory: store.path, maximumAgeNanos: 2 * 24 * 3600 * 1_000_000_000, maximumBytes: 1 << 40
      )
      #expect(try reopened.integrityCheck() == "ok", "round \(round)")
      let stored = Set(try reopened.windowNames())
      let missing = committed.subtracting(stored)
      #expect(
        missing.isEmpty,
        "round \(round): \(missing.count) committed windows missing: \(missing.prefix(5))")
      #expect(reopened.windowCount == stored.count)
      print(
        "round \(round): \(reported.count) windows committed in this run, \(stored.count) stored in all"
      )
    }
    #expect(committed.count >= 20)
  }
}
