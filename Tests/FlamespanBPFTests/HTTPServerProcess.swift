import FlamespanTestSupport
import Foundation

/// samples/http_server (or any server command that prints nothing needed) running on loopback for one test.
final class ServerProcess {
  let process = Process()
  let port: Int
  var pid: Int32 { process.processIdentifier }

  /// Starts samples/bin/http_server on a free port and waits (at most 10 s) for the port it prints.
  init(httpServerIn bin: URL) throws {
    let portFile = bin.appendingPathComponent("port-\(UUID().uuidString.prefix(8))")
    process.executableURL = bin.appendingPathComponent("http_server")
    process.arguments = ["0"]
    _ = FileManager.default.createFile(atPath: portFile.path, contents: nil)
    process.standardOutput = try FileHandle(forWritingTo: portFile)
    process.standardError = FileHandle.nullDevice
    try process.run()
    let deadline = Date().addingTimeInterval(10)
    var port: Int?
    while port == nil && Date() < deadline && process.isRunning {
      let text = (try? String(contentsOf: portFile, encoding: .utf8)) ?? ""
      if text.hasSuffix("\n") {
        port = Int(
          text.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "")
      } else {
        usleep(10_000)
      }
    }
    guard let port else {
      if process.isRunning { kill(process.processIdentifier, SIGKILL) }
      throw TestFailure("http_server did not report its port within 10 s")
    }
    self.port = port
  }

  func stop() {
    // SIGKILL: a server that inherited a blocked SIGTERM would never exit on terminate().
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
  }

  deinit { stop() }
}

/// A client program (curl, wrk…) started in the background so the test can keep polling ring buffers.
final class BackgroundCommand {
  let process = Process()
  private let output = Pipe()

  init(_ arguments: [String]) throws {
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    try process.run()
  }

  var isRunning: Bool { process.isRunning }

  func finish() -> (status: Int32, output: String) {
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
  }
}
