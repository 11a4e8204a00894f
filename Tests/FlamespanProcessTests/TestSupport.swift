import Foundation
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// A directory that exists for one test and is removed afterwards.
final class TemporaryDirectory {
  let path: String

  init() throws {
    var template = Array("\(NSTemporaryDirectory())/flamespan-process-XXXXXX".utf8CString)
    guard let created = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
      throw CommandFailure(description: "mkdtemp failed: errno \(errno)")
    }
    path = String(cString: created)
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
@discardableResult
func runCommand(_ executable: String, _ arguments: [String]) throws -> CommandResult {
  let process = Process()
  process.executableURL = URL(fileURLWithPath: executable)
  process.arguments = arguments
  let outputPipe = Pipe()
  let errorPipe = Pipe()
  process.standardOutput = outputPipe
  process.standardError = errorPipe
  try process.run()
  // Read before waiting so a chatty child never blocks on a full pipe.
  let output = outputPipe.fileHandleForReading.readDataToEndOfFile()
  let errorOutput = errorPipe.fileHandleForReading.readDataToEndOfFile()
  process.waitUntilExit()
  return CommandResult(
    status: process.terminationStatus, output: String(decoding: output, as: UTF8.self),
    errorOutput: String(decoding: errorOutput, as: UTF8.self))
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
