import Foundation

/// The reference OTLP decoder: Python with the PyPI `opentelemetry-proto==1.44.0` bindings (layout
/// v1.10.0), used by the OTLP tests' scripts and by the agent tests' receiver.
///
/// When python3 cannot import that exact version, it is installed once per test process with pip into
/// `.build-python/` under the package root (not into the system's site-packages) and put on PYTHONPATH.
public enum PythonOTLPDecoder {
  public static let version = "1.44.0"
  public static let installDirectory = TestEnvironment.packageRoot.appendingPathComponent(
    ".build-python/opentelemetry-proto-\(version)")

  /// nil when usable, else why not. Computed once: concurrent tests must not race two pip installs.
  public static let problem: String? = {
    guard TestEnvironment.which("python3") != nil else {
      return "python3 is not installed (scripts/setup.sh installs it)"
    }
    if importsExpectedVersion() { return nil }
    let installed = try? Run.command([
      "python3", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
      "--target", installDirectory.path, "opentelemetry-proto==\(version)",
    ])
    if importsExpectedVersion() { return nil }
    return "cannot import opentelemetry-proto==\(version) and pip could not install it into "
      + "\(installDirectory.path): " + (installed?.stderr ?? "pip did not run")
  }()

  /// The environment a Python program needs to import the decoder: PYTHONPATH with the install
  /// directory first, and no bytecode written into the source tree.
  public static var environment: [String: String] {
    let existing = ProcessInfo.processInfo.environment["PYTHONPATH"].map { ":\($0)" } ?? ""
    return ["PYTHONPATH": installDirectory.path + existing, "PYTHONDONTWRITEBYTECODE": "1"]
  }

  /// Every module a user imports: the data layouts (profiles) and both collector services (the agent
  /// tests' receiver decodes trace and profile export requests).
  private static func importsExpectedVersion() -> Bool {
    let check = try? Run.command(
      [
        "python3", "-c",
        "import importlib.metadata as m; "
          + "import opentelemetry.proto.profiles.v1development.profiles_pb2; "
          + "import opentelemetry.proto.collector.trace.v1.trace_service_pb2; "
          + "import opentelemetry.proto.collector.profiles.v1development.profiles_service_pb2; "
          + "print(m.version('opentelemetry-proto'))",
      ], environment: environment)
    return check?.status == 0
      && check?.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == version
  }
}

extension Need {
  /// The reference OTLP decoder, installed on first use; see `PythonOTLPDecoder`.
  public static let pythonOTLP = Need.check { PythonOTLPDecoder.problem }
}
