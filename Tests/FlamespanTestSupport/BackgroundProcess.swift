import Foundation
import Glibc

/// A program started for one test and left running while the test works: a server, a client under
/// load, a workload to profile. It is stopped with SIGKILL, together with every process below it, when
/// the test calls `stop()` or drops it: a child started from a test's dispatch thread inherits that
/// thread's signal mask, in which SIGTERM can be blocked, and a test must never hang on it.
public final class BackgroundProcess: @unchecked Sendable {
  public let process = Process()
  public var pid: Int32 { process.processIdentifier }
  public var isRunning: Bool { process.isRunning }
  /// Where standard output and standard error go: `LABEL.out` and `LABEL.err` in `logs`, or in a
  /// directory of its own that goes with the process.
  public let stdoutFile: URL
  public let stderrFile: URL
  private let scratch: TemporaryDirectory?

  /// Starts `arguments` (a path, or a name looked up on PATH) in `directory`, with `environment` on top
  /// of this process's own. Standard input is the null device.
  public init(
    _ arguments: [String], directory: URL? = nil, environment: [String: String] = [:],
    logs: URL? = nil, label: String = "process"
  ) throws {
    scratch = logs == nil ? try TemporaryDirectory("background") : nil
    let logDirectory = logs ?? scratch!.url
    stdoutFile = logDirectory.appendingPathComponent("\(label).out")
    stderrFile = logDirectory.appendingPathComponent("\(label).err")
    Run.configure(
      process, arguments: arguments, environment: environment.isEmpty ? nil : environment)
    if let directory { process.currentDirectoryURL = directory }
    for file in [stdoutFile, stderrFile] {
      guard FileManager.default.createFile(atPath: file.path, contents: nil) else {
        throw TestFailure("cannot create \(file.path) for \(arguments[0])")
      }
    }
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = try FileHandle(forWritingTo: stdoutFile)
    process.standardError = try FileHandle(forWritingTo: stderrFile)
    try process.run()
  }

  /// What the program has printed so far.
  public var stdout: String { Run.text(of: stdoutFile.path) }
  public var stderr: String { Run.text(of: stderrFile.path) }

  /// The first line of standard output starting with `prefix`, once printed; nil if the program exits
  /// or `seconds` pass first.
  public func waitForLine(startingWith prefix: String, seconds: TimeInterval = 10) -> String? {
    ReadyLine.wait(in: stdoutFile, startingWith: prefix, from: process, seconds: seconds)
  }

  /// Waits for the program to exit by itself, at most `seconds`; then kills it if it still runs.
  /// Returns its status and standard output.
  public func finish(seconds: TimeInterval = 120) -> (status: Int32, output: String) {
    _ = waitUntil(seconds: seconds) { !process.isRunning }
    stop()
    return (process.terminationStatus, stdout)
  }

  /// Sends `signal` and waits up to `seconds` for the program to exit; then kills it. Returns its exit
  /// status (nil when it had to be killed) and how long the exit took, for tests of shutdown.
  public func stop(signal: Int32, within seconds: Double = 10) -> (status: Int32?, seconds: Double)
  {
    let began = Date()
    guard pid != 0, process.isRunning else {
      return (pid == 0 ? nil : process.terminationStatus, 0)
    }
    kill(pid, signal)
    let exited = waitUntil(seconds: seconds) { !process.isRunning }
    let took = Date().timeIntervalSince(began)
    guard exited else {
      stop()
      return (nil, took)
    }
    process.waitUntilExit()
    return (process.terminationStatus, took)
  }

  /// Stops the program and every process below it. It is stopped (SIGSTOP) first so that it cannot
  /// start a new child while its tree is read, and the whole tree is killed: a child left alive keeps
  /// the descriptor through which Foundation learns that the program exited, and `waitUntilExit` would
  /// then wait forever on a zombie (seen with nginx's workers on a loaded machine).
  public func stop() {
    guard pid != 0 else { return }  // never started
    if process.isRunning {
      kill(pid, SIGSTOP)
      for descendant in Self.descendants(of: pid) { kill(descendant, SIGKILL) }
      kill(pid, SIGKILL)
    }
    process.waitUntilExit()
  }

  deinit { stop() }

  /// Every process below `pid`, found through /proc/PID/task/*/children.
  public static func descendants(of pid: Int32) -> [Int32] {
    var found: [Int32] = []
    var pending = [pid]
    while let parent = pending.popLast(), found.count < 4096 {
      let tasks =
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(parent)/task")) ?? []
      for task in tasks {
        let children =
          (try? String(contentsOfFile: "/proc/\(parent)/task/\(task)/children", encoding: .utf8))
          ?? ""
        for child in children.split(separator: " ").compactMap({ Int32($0) }) {
          found.append(child)
          pending.append(child)
        }
      }
    }
    return found
  }
}

/// A server on 127.0.0.1 started for one test, ready once it accepts connections.
public final class LoopbackServer: @unchecked Sendable {
  public let background: BackgroundProcess
  public let port: Int
  public var pid: Int32 { background.pid }

  /// Starts a server told to listen on `port`, and waits (at most `seconds`) until it accepts a
  /// connection there.
  public init(
    _ arguments: [String], port: Int, directory: URL? = nil, seconds: TimeInterval = 10
  ) throws {
    let server = try BackgroundProcess(arguments, directory: directory)
    let listening = waitUntil(seconds: seconds) {
      Loopback.canConnect(port: port) || !server.isRunning
    }
    guard listening, server.isRunning else {
      server.stop()
      throw TestFailure("\(arguments[0]) did not listen on 127.0.0.1:\(port) within \(seconds) s")
    }
    background = server
    self.port = port
  }

  /// Starts a server that picks its own port and prints it as the last word of a line starting with
  /// `prefix`, and waits (at most `seconds`) for that line.
  public init(_ arguments: [String], printingPortAfter prefix: String, seconds: TimeInterval = 10)
    throws
  {
    let server = try BackgroundProcess(arguments)
    guard let line = server.waitForLine(startingWith: prefix, seconds: seconds),
      let port = line.split(separator: " ").last.flatMap({ Int($0) })
    else {
      server.stop()
      throw TestFailure(
        "\(arguments[0]) did not print its port within \(seconds) s: \(server.stderr)")
    }
    background = server
    self.port = port
  }

  /// samples/bin/http_server on a port of its choosing (it prints `listening PORT`).
  public static func httpServer(in bin: URL) throws -> LoopbackServer {
    try LoopbackServer(
      [bin.appendingPathComponent("http_server").path, "0"], printingPortAfter: "listening ")
  }

  public func stop() { background.stop() }
}
