import FlamespanModel
import FlamespanTestSupport
import Foundation
import Testing

@testable import FlamespanProcess

#if canImport(Glibc)
  import Glibc
#endif

@Suite struct ProcessTrackerTests {
  /// The start of the executable text of `pid`'s main program, as named by /proc/PID/exe.
  private func mainTextMapping(in maps: ProcessMaps, executable: String) -> Mapping? {
    maps.mappings.first { $0.kind == .file && $0.path == executable }
  }

  @Test func resolvesAgainstTheImageMappedAtSampleTime() throws {
    let child = try BackgroundProcess(["/bin/sh", "-c", "sleep 0.3; exec sleep 2"])
    defer { child.stop() }
    let pid = child.pid
    let tracker = ProcessTracker()

    let shellPath = try #require(ProcessInspector.executablePath(pid: pid))
    // The spawner resumes as soon as the child's old address space is released, before the kernel has finished
    // mapping the new image, so wait for the shell's text to appear.
    #expect(
      waitUntil(seconds: 3) {
        mapsText(pid: pid).map {
          ProcessInspector.parseMaps($0, pid: pid).mappings.contains { $0.path == shellPath }
        } ?? false
      })
    let beforeExec = ProcessInspector.monotonicNanos()
    #expect(tracker.snapshot(pid: pid, at: beforeExec))
    #expect(tracker.hasSnapshot(pid: pid))
    #expect(
      ProcessInspector.executablePath(pid: pid) == shellPath,
      "the shell exec'd before the first snapshot")

    let sleepPath = URL(fileURLWithPath: "/bin/sleep").resolvingSymlinksInPath().path
    #expect(waitUntil(seconds: 3) { ProcessInspector.executablePath(pid: pid) == sleepPath })
    let afterExec = ProcessInspector.monotonicNanos()
    #expect(tracker.snapshot(pid: pid, at: afterExec))

    let shellMaps = try #require(tracker.maps(pid: pid, at: beforeExec))
    let sleepMaps = try #require(tracker.maps(pid: pid, at: afterExec))
    let shellText = try #require(mainTextMapping(in: shellMaps, executable: shellPath))
    let sleepText = try #require(mainTextMapping(in: sleepMaps, executable: sleepPath))
    let shellBuildID = try readelfBuildID(shellPath)
    let sleepBuildID = try readelfBuildID(sleepPath)
    #expect(shellText.buildID != nil && shellText.buildID?.hex == shellBuildID)
    #expect(sleepText.buildID != nil && sleepText.buildID?.hex == sleepBuildID)

    let shellAddress = shellText.start + 0x10
    let sleepAddress = sleepText.start + 0x10
    #expect(tracker.mapping(pid: pid, address: shellAddress, at: beforeExec)?.path == shellPath)
    #expect(tracker.mapping(pid: pid, address: shellAddress, at: afterExec - 1)?.path == shellPath)
    #expect(tracker.mapping(pid: pid, address: shellAddress, at: afterExec)?.path != shellPath)
    #expect(
      tracker.mapping(pid: pid, address: sleepAddress, at: afterExec + 1_000_000_000)?.path
        == sleepPath)
    #expect(tracker.mapping(pid: pid, address: sleepAddress, at: beforeExec)?.path != sleepPath)
    // A sample older than every snapshot resolves against the first one.
    #expect(
      tracker.mapping(pid: pid, address: shellAddress, at: beforeExec - 5_000_000_000)?.path
        == shellPath)

    // After the process is gone its samples still resolve, and a new snapshot reports it gone.
    child.stop()
    #expect(tracker.mapping(pid: pid, address: sleepAddress, at: afterExec)?.path == sleepPath)
    #expect(!tracker.snapshot(pid: pid, at: ProcessInspector.monotonicNanos()))
    #expect(tracker.processesGone == 1)
    #expect(tracker.snapshotsTaken == 2)
  }

  @Test func processThatExitedBeforeItsSnapshotIsCountedGone() throws {
    let pid = try reapedPID()
    let tracker = ProcessTracker()
    #expect(!tracker.snapshot(pid: pid, at: ProcessInspector.monotonicNanos()))
    #expect(!tracker.hasSnapshot(pid: pid))
    #expect(tracker.processesGone == 1)
    #expect(tracker.snapshotsTaken == 0)
    #expect(tracker.mapping(pid: pid, address: 0x1000, at: 0) == nil)
  }

  @Test func readsEachFileBuildIDOnce() throws {
    let cache = BuildIDCache()
    let tracker = ProcessTracker(buildIDCache: cache)
    #expect(tracker.snapshot(pid: getpid(), at: 1))
    let filesAfterFirst = cache.filesRead
    #expect(filesAfterFirst > 0)
    #expect(tracker.snapshot(pid: getpid(), at: 2))
    #expect(cache.filesRead == filesAfterFirst)
    let distinctFiles = Set(
      (tracker.maps(pid: getpid(), at: 2)?.mappings ?? []).filter { $0.kind == .file }.map {
        "\($0.device):\($0.inode)"
      })
    #expect(
      filesAfterFirst <= distinctFiles.count + 8,
      "only files mapped since the first read may be new")
  }

  @Test func choosesTheSnapshotInForceAndDiscardsOldOnes() {
    let tracker = ProcessTracker()
    func maps(_ path: String) -> ProcessMaps {
      ProcessInspector.parseMaps("1000-2000 r-xp 00000000 00:00 0 \(path)", pid: 7)
    }
    tracker.store(maps("/first"), at: 100)
    tracker.store(maps("/third"), at: 300)
    tracker.store(maps("/second"), at: 200)
    tracker.store(maps("/second"), at: 250)  // unchanged rescan: adds nothing
    #expect(tracker.mapping(pid: 7, address: 0x1800, at: 50)?.path == "/first")
    #expect(tracker.mapping(pid: 7, address: 0x1800, at: 100)?.path == "/first")
    #expect(tracker.mapping(pid: 7, address: 0x1800, at: 199)?.path == "/first")
    #expect(tracker.mapping(pid: 7, address: 0x1800, at: 260)?.path == "/second")
    #expect(tracker.mapping(pid: 7, address: 0x1800, at: 300)?.path == "/third")
    #expect(tracker.mapping(pid: 7, address: 0x2800, at: 300) == nil)
    #expect(tracker.mapping(pid: 8, address: 0x1800, at: 300) == nil)

    tracker.discardSnapshots(before: 250)
    #expect(tracker.mapping(pid: 7, address: 0x1800, at: 50)?.path == "/second")
    #expect(tracker.mapping(pid: 7, address: 0x1800, at: 300)?.path == "/third")
    tracker.forget(pid: 7)
    #expect(!tracker.hasSnapshot(pid: 7))
  }
}
