import Foundation

/// Where things are, and what the machine allows, for tests that run real programs.
public enum TestEnvironment {
  /// The package root, found from this file's location.
  public static let packageRoot: URL = {
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
      url.deleteLastPathComponent()
      if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
        return url
      }
    }
    fatalError("Package.swift not found above \(#filePath)")
  }()

  public static var isCI: Bool {
    let value = ProcessInfo.processInfo.environment["CI"] ?? ""
    return !value.isEmpty && value != "0" && value.lowercased() != "false"
  }

  /// The path of program `name`: in `directories` first, then on PATH, then in /usr/sbin and /sbin.
  public static func which(_ name: String, preferring directories: [String] = []) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for directory in directories + path.split(separator: ":").map(String.init) + [
      "/usr/sbin", "/sbin",
    ] {
      let candidate = "\(directory)/\(name)"
      if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
  }

  /// The `flamespan` binary: $FLAMESPAN_BIN, else the one built beside the test bundle (whatever
  /// --scratch-path was), else the debug or release build under the package root.
  public static var flamespanBinary: String {
    if let path = ProcessInfo.processInfo.environment["FLAMESPAN_BIN"], !path.isEmpty {
      return path
    }
    let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
      .appendingPathComponent("flamespan").path
    if FileManager.default.isExecutableFile(atPath: beside) { return beside }
    for configuration in ["debug", "release"] {
      let path = packageRoot.appendingPathComponent(".build/\(configuration)/flamespan").path
      if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return packageRoot.appendingPathComponent(".build/debug/flamespan").path
  }

  /// A fresh directory under /tmp, removed by the caller when it likes.
  public static func temporaryDirectory(_ label: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent(
      "flamespan-\(label)-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
  }

  /// samples/ built once per test process, for every suite that only runs them; the result, so that a
  /// failed build fails each test that needs it with the build's message.
  public static let sharedSamples: Result<URL, TestFailure> = {
    do {
      return .success(try buildSamples(into: temporaryDirectory("samples")))
    } catch let failure as TestFailure {
      return .failure(failure)
    } catch {
      return .failure(TestFailure("\(error)"))
    }
  }()

  /// Builds samples/ into `directory` with its Makefile and returns the directory.
  public static func buildSamples(into directory: URL) throws -> URL {
    let result = try Run.command(
      [
        "make", "-s", "-C", packageRoot.appendingPathComponent("samples").path,
        "BIN=\(directory.path)",
      ])
    guard result.status == 0 else {
      throw TestFailure("building samples failed: \(result.stderr)")
    }
    return directory
  }
}

public struct TestFailure: Error, CustomStringConvertible {
  public var description: String
  public init(_ description: String) { self.description = description }
}
