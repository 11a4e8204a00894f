import FlamespanELF
import FlamespanModel
import Foundation
import Testing

@testable import FlamespanProcess

@Suite struct ELFBuildIDTests {
  @Test(arguments: ["sha1", "md5", "uuid"])
  func matchesReadelfForFreshlyBuiltBinaries(style: String) throws {
    let directory = try TemporaryDirectory()
    let binary = try compileC(
      helloSource, named: "hello", in: directory, flags: ["-O1", "-Wl,--build-id=\(style)"])
    let expected = try #require(try readelfBuildID(binary))
    #expect(ELFBuildID.read(path: binary)?.hex == expected)
  }

  @Test func readsAnExplicitIDAndSurvivesStripping() throws {
    let directory = try TemporaryDirectory()
    let binary = try compileC(
      helloSource, named: "hello", in: directory,
      flags: ["-Wl,--build-id=0x0123456789abcdeffedcba9876543210aa"])
    #expect(ELFBuildID.read(path: binary)?.hex == "0123456789abcdeffedcba9876543210aa")
    try runChecked("/usr/bin/strip", ["--strip-all", binary])
    #expect(ELFBuildID.read(path: binary)?.hex == "0123456789abcdeffedcba9876543210aa")
  }

  @Test func findsTheNoteThroughSectionsWhenThereAreNoSegments() throws {
    // A relocatable object has section headers but no program headers.
    let directory = try TemporaryDirectory()
    let source = directory.file("unit.c")
    try "int answer(void) { return 42; }\n".write(toFile: source, atomically: true, encoding: .utf8)
    let object = directory.file("unit.o")
    try runChecked("/usr/bin/cc", ["-c", "-o", object, source])
    #expect(ELFBuildID.read(path: object) == nil)
    let linked = directory.file("unit.so")
    try runChecked("/usr/bin/cc", ["-shared", "-Wl,--build-id=sha1", "-o", linked, object])
    let expected = try #require(try readelfBuildID(linked))
    #expect(ELFBuildID.read(path: linked)?.hex == expected)
  }

  @Test func binaryWithoutBuildIDHasNone() throws {
    let directory = try TemporaryDirectory()
    let binary = try compileC(
      helloSource, named: "hello", in: directory, flags: ["-Wl,--build-id=none"])
    #expect(try readelfBuildID(binary) == nil)
    #expect(ELFBuildID.read(path: binary) == nil)
  }

  @Test func garbageIsNotABuildID() throws {
    let directory = try TemporaryDirectory()
    let inputs: [String: [UInt8]] = [
      "empty": [],
      "magic-only": [0x7f, 0x45, 0x4c, 0x46],
      "bad-class": [0x7f, 0x45, 0x4c, 0x46, 9, 1] + [UInt8](repeating: 0, count: 100),
      "text": Array("#!/bin/sh\necho not an elf file at all\n".utf8),
      "random": (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 7) },
    ]
    for (name, bytes) in inputs {
      let path = directory.file(name)
      try Data(bytes).write(to: URL(fileURLWithPath: path))
      #expect(ELFBuildID.read(path: path) == nil, "\(name)")
    }
    #expect(ELFBuildID.read(path: directory.path) == nil)
    #expect(ELFBuildID.read(path: directory.file("missing")) == nil)
    #expect(ELFBuildID.read(path: "/dev/zero") == nil)
  }

  @Test func truncatedCopiesGiveNilOrTheRightID() throws {
    let directory = try TemporaryDirectory()
    let binary = try compileC(
      helloSource, named: "hello", in: directory, flags: ["-Wl,--build-id=sha1"])
    let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: binary)))
    let expected = try #require(ELFBuildID.read(path: binary))
    let truncated = directory.file("truncated")
    var sawNil = false
    for length in stride(from: 0, to: bytes.count, by: 61) {
      try Data(bytes[0..<length]).write(to: URL(fileURLWithPath: truncated))
      let id = ELFBuildID.read(path: truncated)
      #expect(id == nil || id == expected, "length \(length)")
      if id == nil { sawNil = true }
    }
    #expect(sawNil)
  }

  @Test func corruptNoteSizesGiveNil() throws {
    let directory = try TemporaryDirectory()
    let binary = try compileC(
      helloSource, named: "hello", in: directory, flags: ["-Wl,--build-id=sha1"])
    var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: binary)))
    // Locate the note by its "GNU\0" name following namesz=4, descsz=20, type=3.
    let header: [UInt8] = [4, 0, 0, 0, 20, 0, 0, 0, 3, 0, 0, 0, 0x47, 0x4e, 0x55, 0]
    let position = try #require(
      (0..<(bytes.count - header.count)).first {
        bytes[$0..<$0 + header.count].elementsEqual(header)
      })
    for corruptSize: [UInt8] in [
      [0xff, 0xff, 0xff, 0xff], [0xff, 0xff, 0xff, 0x7f], [0x00, 0x10, 0, 0],
    ] {
      var corrupt = bytes
      corrupt.replaceSubrange(position + 4..<position + 8, with: corruptSize)
      let path = directory.file("corrupt")
      try Data(corrupt).write(to: URL(fileURLWithPath: path))
      #expect(ELFBuildID.read(path: path) == nil)
    }
    bytes.replaceSubrange(position..<position + 4, with: [0xff, 0xff, 0xff, 0xff])
    let path = directory.file("corrupt-name")
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    #expect(ELFBuildID.read(path: path) == nil)
  }

  @Test func parsesBigEndianNotes() {
    let notes: [UInt8] = [
      0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 3, 0x47, 0x4e, 0x55, 0, 0xde, 0xad, 0xbe, 0xef,
    ]
    let id = ELFFile.gnuBuildID(inNotes: notes, alignment: 4, bigEndian: true)
    #expect(id.map { BuildID(bytes: $0).hex } == "deadbeef")
    #expect(ELFFile.gnuBuildID(inNotes: notes, alignment: 4, bigEndian: false) == nil)
  }

  /// A 32-bit program's build id: the same notes behind ELF32 headers.
  @Test func readsTheBuildIDOfAnELF32File() throws {
    let directory = try TemporaryDirectory()
    let source = directory.file("tiny.c")
    // No headers or libraries: a 32-bit object needs no 32-bit libc to be compiled and linked.
    try "int main(void) { return 0; }\n".write(toFile: source, atomically: true, encoding: .utf8)
    let object = directory.file("tiny.o")
    try runChecked("/usr/bin/cc", ["-m32", "-c", "-o", object, source])
    let linked = directory.file("tiny32")
    try runChecked(
      "/usr/bin/ld", ["-m", "elf_i386", "--build-id=sha1", "-e", "main", "-o", linked, object])
    let expected = try #require(try readelfBuildID(linked))
    #expect(ELFBuildID.read(path: linked)?.hex == expected)
  }
}
