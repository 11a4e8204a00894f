import FlamespanTestSupport
import Foundation
import Testing

/// The reference decoder: Python with the PyPI `opentelemetry-proto==1.44.0` bindings (layout v1.10.0).
///
/// When python3 cannot import that exact version, it is installed once per run with pip into
/// `.build-python/` under the package root (not into the system's site-packages) and put on PYTHONPATH.
enum PythonOTLP {
  static let version = "1.44.0"
  static let scripts = TestEnvironment.packageRoot.appendingPathComponent(
    "Tests/FlamespanOTLPTests/Python")
  static let installDirectory = TestEnvironment.packageRoot.appendingPathComponent(
    ".build-python/opentelemetry-proto-\(version)")

  /// nil when usable, else why not. Computed once: concurrent tests must not race two pip installs.
  static let problem: String? = {
    guard TestEnvironment.which("python3") != nil else { return "python3 is not installed" }
    if importsExpectedVersion() { return nil }
    let installed = try? Run.command([
      "python3", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
      "--target", installDirectory.path, "opentelemetry-proto==\(version)",
    ])
    if importsExpectedVersion() { return nil }
    return "cannot import opentelemetry-proto==\(version) and pip could not install it: "
      + (installed?.stderr ?? "pip did not run")
  }()

  static var environment: [String: String] {
    let existing = ProcessInfo.processInfo.environment["PYTHONPATH"].map { ":\($0)" } ?? ""
    return ["PYTHONPATH": installDirectory.path + existing, "PYTHONDONTWRITEBYTECODE": "1"]
  }

  private static func importsExpectedVersion() -> Bool {
    let check = try? Run.command(
      [
        "python3", "-c",
        "import importlib.metadata as m; import opentelemetry.proto.profiles.v1development.profiles_pb2; "
          + "print(m.version('opentelemetry-proto'))",
      ], environment: environment)
    return check?.status == 0
      && check?.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == version
  }

  static func run(script: String, _ arguments: [String]) throws -> Run.Result {
    try Run.command(
      ["python3", scripts.appendingPathComponent(script).path] + arguments, environment: environment
    )
  }
}

extension Need {
  /// The reference decoder, installed on first use; see `PythonOTLP`.
  static let pythonOTLP = Need.check { PythonOTLP.problem }
}
