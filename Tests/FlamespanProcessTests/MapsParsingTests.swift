import FlamespanModel
import Foundation
import Testing

@testable import FlamespanProcess

#if canImport(Glibc)
  import Glibc
#endif

@Suite struct MapsParsingTests {
  @Test func classifiesEveryKindOfRange() {
    let text = """
      55d0c8a00000-55d0c8a28000 r--p 00000000 fd:01 1835043                    /usr/bin/app
      55d0c8a28000-55d0c8a9d000 r-xp 00028000 fd:01 1835043                    /usr/bin/app
      7f1a2c000000-7f1a2c021000 rw-p 00000000 00:00 0
      7f1a30000000-7f1a30010000 rwxp 00000000 00:00 0
      7f1a31000000-7f1a31001000 r-xp 00000000 00:00 0                          [anon:v8 jit]
      7f1a32000000-7f1a32004000 r-xs 00000000 00:01 4242                       /memfd:jit-code (deleted)
      7f1a33000000-7f1a33100000 r-xp 00002000 08:10 777                        /opt/my lib/libold.so (deleted)
      7f1a34000000-7f1a34001000 r-xs 00000000 00:01 9                          /dev/zero (deleted)
      7ffd1b7f0000-7ffd1b7f2000 r-xp 00000000 00:00 0                          [vdso]
      7ffd1b700000-7ffd1b721000 rwxp 00000000 00:00 0                          [stack]
      ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
      """
    let maps = ProcessInspector.parseMaps(text, pid: 42)
    #expect(maps.pid == 42)
    let summary = maps.mappings.map { "\($0.path)|\($0.kind)" }
    #expect(
      summary == [
        "/usr/bin/app|file",
        "[anon]|anonymous",
        "[anon:v8 jit]|anonymous",
        "/memfd:jit-code|anonymous",
        "/opt/my lib/libold.so|deletedFile",
        "/dev/zero|anonymous",
        "[stack]|special",
        "[vdso]|vdso",
        "[vsyscall]|special",
      ])
    let app = maps.mappings[0]
    #expect(app.start == 0x55d0_c8a2_8000)
    #expect(app.limit == 0x55d0_c8a9_d000)
    #expect(app.fileOffset == 0x28000)
    #expect(app.inode == 1_835_043)
    #expect(app.buildID == nil)
    // fd:01 → major 253, minor 1, in glibc makedev encoding.
    #expect(app.device == (253 << 8 | 1))
    #expect(maps.mappings[4].device == (8 << 8 | 0x10))
  }

  @Test func skipsLinesItCannotParse() {
    let text = """
      garbage
      zzzz-55d0c8a9d000 r-xp 00028000 fd:01 1835043 /bad/start
      2000-1000 r-xp 00000000 fd:01 1 /limit/before/start
      1000-2000 r-xp 0000000g fd:01 1 /bad/offset
      1000-2000 r-xp 00000000 fd01 1 /bad/device
      1000-2000 r-xp 00000000 fd:01 12a /bad/inode
      1000-2000 r-x
      3000-4000 r-xp 00000000 fd:01 7 /good
      """
    let maps = ProcessInspector.parseMaps(text, pid: 1)
    #expect(maps.mappings.map(\.path) == ["/good"])
  }

  @Test func findsTheMappingContainingAnAddress() {
    let text = """
      1000-2000 r-xp 00000000 00:00 0 /a
      3000-5000 r-xp 00000000 00:00 0 /b
      5000-6000 r-xp 00001000 00:00 0 /c
      """
    let maps = ProcessInspector.parseMaps(text, pid: 1)
    #expect(maps.mapping(containing: 0xfff) == nil)
    #expect(maps.mapping(containing: 0x1000)?.path == "/a")
    #expect(maps.mapping(containing: 0x1fff)?.path == "/a")
    #expect(maps.mapping(containing: 0x2000) == nil)
    #expect(maps.mapping(containing: 0x4fff)?.path == "/b")
    #expect(maps.mapping(containing: 0x5000)?.path == "/c")
    #expect(maps.mapping(containing: 0x6000) == nil)
    #expect(maps.mapping(containing: .max) == nil)
    #expect(ProcessMaps(pid: 1, mappings: []).mapping(containing: 0x1000) == nil)
  }

  @Test func parsesThisProcessMaps() throws {
    let text = try #require(mapsText(pid: getpid()))
    let executableLines = text.split(separator: "\n").filter { line in
      let permissions = line.split(separator: " ", omittingEmptySubsequences: true)[1]
      return permissions.dropFirst(2).first == "x"
    }
    let maps = ProcessInspector.parseMaps(text, pid: getpid())
    #expect(maps.mappings.count == executableLines.count)
    #expect(zip(maps.mappings, maps.mappings.dropFirst()).allSatisfy { $0.limit <= $1.start })

    let strlenAddress = UInt64(
      UInt(bitPattern: dlsym(UnsafeMutableRawPointer(bitPattern: 0), "strlen")))
    let libc = try #require(maps.mapping(containing: strlenAddress))
    #expect(libc.kind == .file)
    #expect(libc.path.contains("libc.so"))
    // The device and inode must name the file the way stat does, since caches key on them.
    var info = stat()
    #expect(stat(libc.path, &info) == 0)
    #expect(libc.device == UInt64(info.st_dev))
    #expect(libc.inode == UInt64(info.st_ino))
  }

  @Test func readMapsFillsBuildIDsThatMatchReadelf() throws {
    let maps = try ProcessInspector.readMaps(pid: getpid())
    let strlenAddress = UInt64(
      UInt(bitPattern: dlsym(UnsafeMutableRawPointer(bitPattern: 0), "strlen")))
    let libc = try #require(maps.mapping(containing: strlenAddress))
    let expected = try #require(try readelfBuildID(libc.path))
    #expect(libc.buildID?.hex == expected)
    #expect(maps.mappings.contains { $0.kind == .vdso })
  }
}
