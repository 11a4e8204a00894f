import FlamespanModel
import FlamespanTestSupport
import Foundation
import Testing

@testable import FlamespanProcess

/// Binaries that are deleted or replaced while running (package upgrades, redeploys) must keep the build id of
/// the image actually mapped, never that of whatever file now sits at the path.
@Suite struct DeletedFileTests {
  private let sleeperSource = """
    #include <unistd.h>
    int main(void) { sleep(5); return 0; }
    """

  private func runningCopy(of binary: String, at path: String) throws -> BackgroundProcess {
    try FileManager.default.copyItem(atPath: binary, toPath: path)
    let process = try BackgroundProcess([path])
    let pid = process.pid
    _ = waitUntil(seconds: 3) {
      (try? ProcessInspector.readMaps(pid: pid))?.mappings.contains { $0.path == path } ?? false
    }
    return process
  }

  @Test func deletedExecutableKeepsItsBuildID() throws {
    let directory = try TemporaryDirectory()
    let binary = try compileC(
      sleeperSource, named: "sleeper", in: directory, flags: ["-Wl,--build-id=sha1"])
    let expected = try #require(ELFBuildID.read(path: binary))
    let runningPath = directory.file("running")
    let process = try runningCopy(of: binary, at: runningPath)
    defer { process.stop() }
    try FileManager.default.removeItem(atPath: runningPath)

    let maps = try ProcessInspector.readMaps(pid: process.pid)
    let text = try #require(maps.mappings.first { $0.path == runningPath })
    #expect(text.kind == .deletedFile)
    #expect(text.buildID == expected)
  }

  @Test func replacedExecutableIsNotConfusedWithItsReplacement() throws {
    let directory = try TemporaryDirectory()
    let original = try compileC(
      sleeperSource, named: "original", in: directory, flags: ["-Wl,--build-id=0x1111111111111111"])
    let replacement = try compileC(
      sleeperSource, named: "replacement", in: directory,
      flags: ["-Wl,--build-id=0x2222222222222222"])
    let runningPath = directory.file("running")
    let process = try runningCopy(of: original, at: runningPath)
    defer { process.stop() }
    // An upgrade: new file renamed over the old path, so the mapping shows " (deleted)" and the path now holds
    // a different image.
    let staged = directory.file("staged")
    try FileManager.default.copyItem(atPath: replacement, toPath: staged)
    #expect(rename(staged, runningPath) == 0)

    let maps = try ProcessInspector.readMaps(pid: process.pid)
    let text = try #require(maps.mappings.first { $0.path == runningPath })
    #expect(text.kind == .deletedFile)
    #expect(text.buildID?.hex == "1111111111111111")
  }
}
