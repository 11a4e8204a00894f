import FlamespanExport
import FlamespanModel
import FlamespanTestSupport
import Foundation
import Testing

@Suite struct ProfileExporterTests {
  @Test func formatComesFromTheExtension() throws {
    #expect(try OutputFormat(path: "/tmp/cpu.pb.gz") == .pprof)
    #expect(try OutputFormat(path: "out/CPU.PB.GZ") == .pprof)
    #expect(try OutputFormat(path: "stacks.folded") == .folded)
    #expect(try OutputFormat(path: "/a.b/flame.svg") == .svg)
    #expect {
      try OutputFormat(path: "/tmp/profile.json")
    } throws: { error in
      guard let error = error as? ExportError else { return false }
      return error.code == .unsupportedFormat && error.path == "/tmp/profile.json"
        && OutputFormat.supportedExtensions.allSatisfy { error.description.contains($0) }
    }
    #expect(throws: ExportError.self) { try OutputFormat(path: "/tmp/.svg") }
    #expect(throws: ExportError.self) { try OutputFormat(path: "/tmp/x.gz") }
  }

  @Test func writesEachFormatAtomicallyLeavingNoTemporaryFiles() throws {
    let directory = try TemporaryDirectory("write")
    let profile = Fixture.profile()
    for name in ["cpu.pb.gz", "cpu.folded", "cpu.svg"] {
      // An existing file is replaced whole.
      try Data("old contents".utf8).write(to: URL(fileURLWithPath: directory.file(name)))
      try ProfileExporter.write(profile, to: directory.file(name), title: "Written")
    }
    #expect(Set(directory.contents) == ["cpu.pb.gz", "cpu.folded", "cpu.svg"])
    let decoded = try ProfileExporter.readPprof(from: directory.file("cpu.pb.gz"))
    #expect(decoded.totalCount == 45)
    #expect(
      try String(contentsOfFile: directory.file("cpu.folded"), encoding: .utf8)
        == FoldedStacks.render(profile))
    #expect(
      try String(contentsOfFile: directory.file("cpu.svg"), encoding: .utf8).contains(
        ">Written</text>"))
  }

  @Test func validationCatchesBadPathsBeforeRecording() throws {
    let directory = try TemporaryDirectory("validate")
    try ProfileExporter.validateOutputPath(directory.file("ok.pb.gz"))
    try ProfileExporter.validateOutputPath("relative-in-cwd.svg")
    #expect(directory.contents.isEmpty, "validation leaves nothing behind: \(directory.contents)")

    func code(_ path: String) -> ExportError.Code? {
      do {
        try ProfileExporter.validateOutputPath(path)
        return nil
      } catch {
        return error.code
      }
    }
    #expect(code(directory.file("missing/dir/out.svg")) == .directoryMissing)
    #expect(code(directory.file("ok.txt")) == .unsupportedFormat)
    try FileManager.default.createDirectory(
      atPath: directory.file("taken.svg"), withIntermediateDirectories: false)
    #expect(code(directory.file("taken.svg")) == .notWritable)
    try Data().write(to: URL(fileURLWithPath: directory.file("plainfile")))
    #expect(code(directory.file("plainfile/out.svg")) == .directoryMissing)
  }

  /// Root ignores permission bits, so a read-only bind mount is the honest way to make a directory
  /// unwritable for root; without privileges to mount, a chmod-ed directory works for ordinary users.
  @Test func unwritableDirectoryIsReportedWithErrno() throws {
    let directory = try TemporaryDirectory("readonly")
    let target = directory.file("ro")
    try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: false)
    var unmount: (() -> Void)?
    if geteuid() == 0 {
      guard let mount = TestEnvironment.which("mount"),
        let umount = TestEnvironment.which("umount"),
        try Run.command([mount, "--bind", "-o", "ro", target, target]).status == 0
      else {
        print("SKIPPED \(#function): cannot make a read-only bind mount here")
        return
      }
      _ = try Run.command([mount, "-o", "remount,bind,ro", target])
      unmount = { _ = try? Run.command([umount, target]) }
    } else {
      try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: target)
    }
    defer { unmount?() }
    #expect {
      try ProfileExporter.validateOutputPath("\(target)/cpu.pb.gz")
    } throws: { error in
      guard let error = error as? ExportError else { return false }
      return error.code == .notWritable && (error.errno == EROFS || error.errno == EACCES)
        && error.path == target
    }
    #expect(throws: ExportError.self) {
      try ProfileExporter.write(Fixture.profile(), to: "\(target)/cpu.svg", title: "")
    }
  }

  @Test func readingAMissingFileNamesIt() {
    #expect {
      try ProfileExporter.readPprof(from: "/nonexistent/cpu.pb.gz")
    } throws: { error in
      guard let error = error as? ExportError else { return false }
      return error.code == .readFailed && error.errno == ENOENT
        && error.description.contains("/nonexistent/cpu.pb.gz")
        && error.description.contains("No such file")
    }
  }
}
