import FlamespanModel
import FlamespanTestSupport
import Foundation
import Testing

@Suite struct AtomicFileTests {
  @Test func replacesTheFileWholeAndLeavesNoTemporaryFile() throws {
    let directory = try TestEnvironment.temporaryDirectory("atomic")
    defer { try? FileManager.default.removeItem(at: directory) }
    let path = directory.appendingPathComponent("out.json").path
    try AtomicFile.write(Array("old".utf8), to: path)
    try AtomicFile.write(Array("new contents".utf8), to: path, permissions: 0o600)
    #expect(FileManager.default.contents(atPath: path) == Data("new contents".utf8))
    let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
    #expect(names == ["out.json"])
  }

  @Test func newFilesGetThePermissionsAsked() throws {
    let directory = try TestEnvironment.temporaryDirectory("atomic-mode")
    defer { try? FileManager.default.removeItem(at: directory) }
    let path = directory.appendingPathComponent("private").path
    try AtomicFile.write([1], to: path, permissions: 0o600)
    let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
    #expect(mode == 0o600)
  }

  @Test func aMissingDirectoryIsACreateErrorWithItsErrno() {
    do {
      try AtomicFile.write([1, 2, 3], to: "/nonexistent-flamespan-dir/file")
      Issue.record("wrote into a directory that does not exist")
    } catch {
      #expect(error.step == "create" && error.errno == ENOENT, "\(error)")
      #expect(error.description.contains("/nonexistent-flamespan-dir"))
      #expect(!error.isDiskFull)
    }
  }

  @Test func removesWhatACrashLeftBehind() throws {
    let directory = try TestEnvironment.temporaryDirectory("atomic-leftovers")
    defer { try? FileManager.default.removeItem(at: directory) }
    #expect(
      FileManager.default.createFile(
        atPath: directory.appendingPathComponent(".a.json.1.ff.tmp").path, contents: Data()))
    #expect(
      FileManager.default.createFile(
        atPath: directory.appendingPathComponent("b.tmp").path, contents: Data()))
    #expect(
      FileManager.default.createFile(
        atPath: directory.appendingPathComponent("keep.json").path, contents: Data()))
    #expect(AtomicFile.removeTemporaryFiles(in: directory.path) == 2)
    #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["keep.json"])
  }

  @Test func splitsPaths() {
    #expect(AtomicFile.directory(of: "/a/b/c.txt") == "/a/b")
    #expect(AtomicFile.directory(of: "/c.txt") == "/")
    #expect(AtomicFile.directory(of: "c.txt") == ".")
    #expect(AtomicFile.fileName(of: "/a/b/c.txt") == "c.txt")
  }
}
