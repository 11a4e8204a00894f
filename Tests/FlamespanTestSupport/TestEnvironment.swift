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

  /// True when this process may load BPF. Outside CI a test without privileges is skipped with a printed
  /// reason; under CI=true the caller must fail instead, since CI runs as root where BPF works.
  public static func bpfAvailable(for test: String) -> Bool {
    if geteuid() == 0 { return true }
    let reason = "\(test): needs root (or CAP_BPF+CAP_PERFMON) to load BPF programs"
    if isCI {
      FileHandle.standardError.write(Data("FAIL under CI: \(reason)\n".utf8))
      return false
    }
    print("SKIPPED \(reason); run the suite as root to include it")
    return false
  }

  /// Same rule for an external tool the test compares against.
  public static func toolAvailable(_ name: String, for test: String) -> Bool {
    if which(name) != nil { return true }
    if isCI {
      FileHandle.standardError.write(
        Data("FAIL under CI: \(test): \(name) is not installed\n".utf8))
      return false
    }
    print("SKIPPED \(test): \(name) is not installed (scripts/setup.sh installs it)")
    return false
  }

  public static func which(_ name: String) -> String? {
    let paths =
      (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin") + ":/usr/sbin:/sbin"
    for directory in paths.split(separator: ":") {
      let candidate = "\(directory)/\(name)"
      if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
  }

  /// The `flamespan` binary: $FLAMESPAN_BIN, else the debug build next to the tests.
  public static var flamespanBinary: String {
    if let path = ProcessInfo.processInfo.environment["FLAMESPAN_BIN"], !path.isEmpty {
      return path
    }
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
