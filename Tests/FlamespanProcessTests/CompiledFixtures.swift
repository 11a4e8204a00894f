import FlamespanTestSupport
import Foundation

@testable import FlamespanProcess

/// The whole text of /proc/PID/maps. Foundation's file reading may stop after one read of a /proc file
/// (they report size 0), so read it through the module's own reader.
func mapsText(pid: Int32) -> String? {
  (try? FileAccess.readAll(path: "/proc/\(pid)/maps", pid: pid)).map {
    String(decoding: $0, as: UTF8.self)
  }
}

/// `Run.checked` in the argument shape the ELF build-id tests use.
@discardableResult
func runChecked(_ executable: String, _ arguments: [String]) throws -> String {
  try Run.checked([executable] + arguments)
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
  try Run.checked(["/usr/bin/cc"] + flags + ["-o", binaryPath, sourcePath])
  return binaryPath
}

/// The build id as binutils' `readelf -n` reports it: the independent reference for our parser.
func readelfBuildID(_ path: String) throws -> String? {
  let output = try Run.checked(["/usr/bin/readelf", "-n", path])
  for line in output.split(separator: "\n") {
    let trimmed = line.trimmingCharacters(in: .whitespaces)
    if trimmed.hasPrefix("Build ID:") {
      return trimmed.dropFirst("Build ID:".count).trimmingCharacters(in: .whitespaces)
    }
  }
  return nil
}

let helloSource = """
  #include <stdio.h>
  int main(void) { puts("hello"); return 0; }
  """

/// The shared scratch directory, named here for the suites of this target that do not import
/// FlamespanTestSupport themselves.
typealias TemporaryDirectory = FlamespanTestSupport.TemporaryDirectory
