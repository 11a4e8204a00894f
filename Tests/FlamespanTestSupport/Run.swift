import Foundation

/// Runs a program to completion and captures what it printed.
///
/// Standard input, output and error are files, never pipes: Foundation's Process lets children inherit
/// open descriptors, so a long-lived child started by a concurrent test could hold a pipe's end open,
/// and a reader would then wait for that child instead of for this one.
public enum Run {
  public struct Result: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
  }

  /// `arguments[0]` is a path, or a name looked up on PATH.
  public static func command(
    _ arguments: [String], input: String? = nil, environment: [String: String]? = nil,
    currentDirectory: URL? = nil
  ) throws -> Result {
    let scratch = try TemporaryDirectory("run")
    let process = Process()
    configure(process, arguments: arguments, environment: environment)
    if let currentDirectory { process.currentDirectoryURL = currentDirectory }
    let inputPath = scratch.file("stdin")
    let outputPath = scratch.file("stdout")
    let errorPath = scratch.file("stderr")
    for (path, contents) in [(inputPath, input ?? ""), (outputPath, ""), (errorPath, "")] {
      guard FileManager.default.createFile(atPath: path, contents: Data(contents.utf8)) else {
        throw TestFailure("cannot create \(path) to run \(arguments[0])")
      }
    }
    let inputHandle = try FileHandle(forReadingFrom: URL(fileURLWithPath: inputPath))
    let outputHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
    let errorHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: errorPath))
    process.standardInput = inputHandle
    process.standardOutput = outputHandle
    process.standardError = errorHandle
    try process.run()
    process.waitUntilExit()
    for handle in [inputHandle, outputHandle, errorHandle] { try handle.close() }
    return Result(
      status: process.terminationStatus, stdout: text(of: outputPath), stderr: text(of: errorPath))
  }

  /// Runs the program and returns its standard output; throws with its standard error unless it
  /// exits 0.
  @discardableResult
  public static func checked(
    _ arguments: [String], input: String? = nil, environment: [String: String]? = nil,
    currentDirectory: URL? = nil
  ) throws -> String {
    let result = try command(
      arguments, input: input, environment: environment, currentDirectory: currentDirectory)
    guard result.status == 0 else {
      throw TestFailure(
        "\(arguments.joined(separator: " ")) exited \(result.status): \(result.stderr)")
    }
    return result.stdout
  }

  /// Sets the executable (a path, or a name found on PATH through /usr/bin/env), the arguments, and
  /// `environment` on top of this process's own.
  static func configure(_ process: Process, arguments: [String], environment: [String: String]?) {
    if arguments[0].hasPrefix("/") {
      process.executableURL = URL(fileURLWithPath: arguments[0])
      process.arguments = Array(arguments.dropFirst())
    } else {
      process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
      process.arguments = arguments
    }
    if let environment {
      process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
  }

  static func text(of path: String) -> String {
    String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
  }
}
