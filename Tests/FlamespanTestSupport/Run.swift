import Foundation

/// Runs a program to completion and captures what it printed.
public enum Run {
  public struct Result: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
  }

  public static func command(
    _ arguments: [String], input: String? = nil, environment: [String: String]? = nil,
    currentDirectory: URL? = nil
  ) throws -> Result {
    let process = Process()
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
    if let currentDirectory { process.currentDirectoryURL = currentDirectory }
    let outPipe = Pipe()
    let errPipe = Pipe()
    let inPipe = Pipe()
    process.standardOutput = outPipe
    process.standardError = errPipe
    process.standardInput = inPipe
    try process.run()
    // Read both pipes concurrently so a chatty child cannot fill one and block.
    let errBox = DataBox()
    let group = DispatchGroup()
    let errHandle = errPipe.fileHandleForReading
    DispatchQueue.global().async(group: group) { errBox.data = errHandle.readDataToEndOfFile() }
    if let input { inPipe.fileHandleForWriting.write(Data(input.utf8)) }
    try? inPipe.fileHandleForWriting.close()
    let outData = outPipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    group.wait()
    return Result(
      status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
      stderr: String(decoding: errBox.data, as: UTF8.self))
  }
}

/// Written by one reader thread, read after DispatchGroup.wait(): the wait orders the two.
private final class DataBox: @unchecked Sendable {
  var data = Data()
}
