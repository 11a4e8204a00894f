import FlamespanModel
import FlamespanTestSupport
import Foundation
import Testing

@testable import FlamespanProcess

#if canImport(Glibc)
  import Glibc
#endif

/// A pid that belonged to a process which has exited and been reaped.
func reapedPID() throws -> Int32 {
  let process = try BackgroundProcess(["/bin/true"])
  _ = process.finish(seconds: 10)
  return process.pid
}

@Suite struct ProcessInspectorTests {
  @Test func describesThisProcess() throws {
    let pid = getpid()
    #expect(ProcessInspector.exists(pid: pid))
    let executable = try #require(ProcessInspector.executablePath(pid: pid))
    #expect(
      executable
        == Bundle.main.executablePath.map {
          URL(fileURLWithPath: $0).resolvingSymlinksInPath().path
        })
    let comm = try String(contentsOfFile: "/proc/self/comm", encoding: .utf8)
    #expect(
      ProcessInspector.threadName(pid: pid, tid: pid) == comm.trimmingCharacters(in: .newlines))
  }

  @Test func namesOtherThreads() throws {
    let named = "fs-proc-test"
    let ready = DispatchSemaphore(value: 0)
    let done = DispatchSemaphore(value: 0)
    let tid = ManagedTid()
    let thread = Thread {
      // /proc/thread-self links to "PID/task/TID"; writing its comm renames this thread.
      let link =
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self")) ?? ""
      tid.value = link.split(separator: "/").last.flatMap { Int32($0) } ?? 0
      try? named.write(toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
      ready.signal()
      done.wait()
    }
    thread.start()
    ready.wait()
    #expect(ProcessInspector.threadName(pid: getpid(), tid: tid.value) == named)
    done.signal()
  }

  @Test func reportsAGoneProcess() throws {
    let pid = try reapedPID()
    #expect(!ProcessInspector.exists(pid: pid))
    #expect(ProcessInspector.threadName(pid: pid, tid: pid) == nil)
    #expect(ProcessInspector.executablePath(pid: pid) == nil)
    #expect(!ProcessInspector.exists(pid: 0))
    #expect(!ProcessInspector.exists(pid: -1))
    do {
      _ = try ProcessInspector.readMaps(pid: pid)
      Issue.record("reading the maps of a reaped process succeeded")
    } catch {
      #expect(error.code == .noSuchProcess)
      #expect(error.pid == pid)
      #expect(error.errno == ENOENT)
      #expect(error.path == "/proc/\(pid)/maps")
      #expect(error.description.contains("\(pid)"))
    }
  }

  @Test func monotonicClockAdvancesWithRealTime() throws {
    let before = ProcessInspector.monotonicNanos()
    usleep(20_000)
    let after = ProcessInspector.monotonicNanos()
    #expect(after - before >= 20_000_000)
    #expect(after - before < 2_000_000_000)
  }
}

final class ManagedTid: @unchecked Sendable {
  var value: Int32 = 0
}
