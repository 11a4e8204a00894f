import FlamespanTestSupport
import Foundation

/// Runs the scripts in Tests/FlamespanOTLPTests/Python with the reference decoder
/// (`PythonOTLPDecoder`, which `.requires(.pythonOTLP)` installs on first use).
enum PythonOTLP {
  static let scripts = TestEnvironment.packageRoot.appendingPathComponent(
    "Tests/FlamespanOTLPTests/Python")

  static func run(script: String, _ arguments: [String]) throws -> Run.Result {
    try Run.command(
      ["python3", scripts.appendingPathComponent(script).path] + arguments,
      environment: PythonOTLPDecoder.environment)
  }
}
