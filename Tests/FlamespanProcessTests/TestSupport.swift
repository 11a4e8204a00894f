import Foundation
import Testing

@testable import FlamespanProcess

#if canImport(Glibc)
  import Glibc
#endif

/// A directory that exists for one test and is removed afterwards.
final class TemporaryDirectory {
  let path: String

  init() throws {
    var template = Array("\(NSTemporaryDirectory())flamespan-process-XXXXXX".utf8CString)
    guard let created = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
      throw CommandFailure(description: "mkdtemp failed: errno \(errno)")
    }
    // The kernel reports canonical paths in /proc/PID/maps, so tests must compare against one.
    guard let canonical = realpath(created, nil) else {
      throw CommandFailure(description: "realpath failed: errno \(errno)")
    }
    defer { free(canonical) }
    path = String(cString: canonical)
  }

  deinit { try? FileManager.default.removeItem(atPath: path) }

  func file(_ name: String) -> String { "\(path)/\(name)" }
}

struct CommandFailure: Error, CustomStringConvertible {
  let description: String
}

struct CommandResult {
  let status: Int32
  let output: String
  let errorOutput: String
}

/// Runs a program to completion, capturing its output.
///
/// Output goes to files, not pipes: Foundation's Process lets children inherit open descriptors, so a long-lived
/// child spawned by a concurrent test would hold a pipe's write end open and block the reader until it exits.
@discardableResult
func runCommand(_ executable: String, _ arguments: [String]) throws -> CommandResult {
  let scratch = try TemporaryDirectory()
  let outputPath = scratch.file("stdout")
  let errorPath = scratch.file("stderr")
  guard FileManager.default.createFile(atPath: outputPath, contents: nil),
    FileManager.default.createFile(atPath: errorPath, contents: nil),
    let output = FileHandle(forWritingAtPath: outputPath),
    let errorOutput = FileHandle(forWritingAtPath: errorPath)
  else { throw CommandFailure(description: "cannot create output files in \(scratch.path)") }
  let process = Process()
  process.executableURL = URL(fileURLWithPath: executable)
  process.arguments = arguments
  process.standardInput = FileHandle.nullDevice
  process.standardOutput = output
  process.standardError = errorOutput
  try process.run()
  process.waitUntilExit()
  try output.close()
  try errorOutput.close()
  return CommandResult(
    status: process.terminationStatus,
    output: String(
      decoding: FileManager.default.contents(atPath: outputPath) ?? Data(), as: UTF8.self),
    errorOutput: String(
      decoding: FileManager.default.contents(atPath: errorPath) ?? Data(), as: UTF8.self))
}

extension Process {
  /// SIGKILL, because `terminate()`'s SIGTERM can be blocked: children spawned from a test's dispatch thread
  /// inherit its signal mask, in which libdispatch blocks most signals.
  func killNow() {
    if isRunning { kill(processIdentifier, SIGKILL) }
  }

  /// Keeps a background child off the test runner's streams.
  func detachStandardStreams() {
    standardInput = FileHandle.nullDevice
    standardOutput = FileHandle.nullDevice
    standardError = FileHandle.nullDevice
  }
}

/// The whole text of /proc/PID/maps. Foundation's file reading may stop after one read of a /proc file
/// (they report size 0), so read it through the module's own reader.
func mapsText(pid: Int32) -> String? {
  (try? FileAccess.readAll(path: "/proc/\(pid)/maps", pid: pid)).map {
    String(decoding: $0, as: UTF8.self)
  }
}

/// Runs a program and fails with its stderr if it does not exit 0.
@discardableResult
func runChecked(_ executable: String, _ arguments: [String]) throws -> String {
  let result = try runCommand(executable, arguments)
  guard result.status == 0 else {
    throw CommandFailure(
      description:
        "\(executable) \(arguments.joined(separator: " ")) exited \(result.status): \(result.errorOutput)"
    )
  }
  return result.output
}

/// Compiles a C source into an executable in `directory`.
func compileC(
  _ source: String, named name: String, in directory: TemporaryDirectory, flags: [String]
) throws
  -> String
{
  let sourcePath = directory.file("\(name).c")
  try source.write(toFile: sourcePath, atomically: true, encoding: .utf8)
  let binaryPath = directory.file(name)
  try runChecked("/usr/bin/cc", flags + ["-o", binaryPath, sourcePath])
  return binaryPath
}

/// The build id as binutils' `readelf -n` reports it: the independent reference for our parser.
func readelfBuildID(_ path: String) throws -> String? {
  let output = try runChecked("/usr/bin/readelf", ["-n", path])
  for line in output.split(separator: "\n") {
    let trimmed = line.trimmingCharacters(in: .whitespaces)
    if trimmed.hasPrefix("Build ID:") {
      return trimmed.dropFirst("Build ID:".count).trimmingCharacters(in: .whitespaces)
    }
  }
  return nil
}

/// The repository root, found from this file's location (Tests/FlamespanProcessTests/TestSupport.swift).
func repositoryRoot(filePath: String = #filePath) -> String {
  var url = URL(fileURLWithPath: filePath)
  for _ in 0..<3 { url.deleteLastPathComponent() }
  return url.path
}

/// Polls `condition` until it holds or `timeout` seconds pass.
func waitUntil(timeout: Double, _ condition: () -> Bool) -> Bool {
  let deadline = Date().addingTimeInterval(timeout)
  while Date() < deadline {
    if condition() { return true }
    usleep(10_000)
  }
  return condition()
}

let helloSource = """
  #include <stdio.h>
  int main(void) { puts("hello"); return 0; }
  """
