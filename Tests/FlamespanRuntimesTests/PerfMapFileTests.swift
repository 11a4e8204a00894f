import FlamespanRuntimes
import FlamespanTestSupport
import Foundation
import Testing

/// The reader following a file the way a JIT writes it: appends, a line cut in two, truncation and
/// replacement.
@Suite struct PerfMapFileTests {
  final class TempFile {
    let directory: URL
    let path: String
    init() throws {
      directory = try TestEnvironment.temporaryDirectory("perfmap")
      path = directory.appendingPathComponent("perf-1.map").path
    }
    deinit { try? FileManager.default.removeItem(at: directory) }

    func write(_ text: String) throws {
      try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    func append(_ text: String) throws {
      let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
      defer { try? handle.close() }
      try handle.seekToEnd()
      try handle.write(contentsOf: Data(text.utf8))
    }
  }

  @Test func readsOnlyWhatWasAppendedAndWaitsForAPartialLine() throws {
    let file = try TempFile()
    try file.write("1000 10 first\n2000 10 second\n")
    let map = PerfMap(path: file.path)
    #expect(map.refresh())
    #expect(map.entryCount == 2)
    #expect(map.offset == 29)
    // Nothing new: nothing read.
    #expect(!map.refresh())
    #expect(map.offset == 29)

    // The writer flushed half a line.
    try file.append("3000 10 thi")
    #expect(map.refresh())
    #expect(map.entryCount == 2)
    #expect(map.name(at: 0x3000) == nil)
    #expect(map.badLines == 0)

    try file.append("rd part\n4000 20 fourth\n")
    #expect(map.refresh())
    #expect(map.entryCount == 4)
    #expect(map.name(at: 0x3005) == "third part")
    #expect(map.name(at: 0x401f) == "fourth")
    #expect(map.name(at: 0x1000) == "first")
    #expect(map.badLines == 0)
    #expect(map.restarts == 0)
  }

  @Test func aLineSplitAtEveryByteReadsTheSame() throws {
    let text = "0x1000 0x10 one two\n2000 10 three\n"
    let bytes = Array(text.utf8)
    for cut in 1..<bytes.count {
      let map = PerfMap(path: "/nonexistent")
      map.consume(Array(bytes[..<cut]))
      map.consume(Array(bytes[cut...]))
      #expect(map.entryCount == 2, "cut at \(cut)")
      #expect(map.name(at: 0x1008) == "one two", "cut at \(cut)")
      #expect(map.badLines == 0, "cut at \(cut)")
    }
  }

  @Test func restartsWhenTheFileShrinksOrIsReplaced() throws {
    let file = try TempFile()
    try file.write("1000 10 old-one\n2000 10 old-two\nbad line\n")
    let map = PerfMap(path: file.path)
    map.refresh()
    #expect(map.entryCount == 2)
    #expect(map.badLines == 1)

    // Truncated and rewritten shorter: the same inode, a smaller size.
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: file.path))
    try handle.truncate(atOffset: 0)
    try handle.write(contentsOf: Data("5000 10 new\n".utf8))
    try handle.close()
    #expect(map.refresh())
    #expect(map.restarts == 1)
    #expect(map.entryCount == 1)
    #expect(map.badLines == 0)
    #expect(map.name(at: 0x1000) == nil)
    #expect(map.name(at: 0x5000) == "new")

    // Replaced by another file (a new inode) at least as long: still read from the start.
    let other = file.directory.appendingPathComponent("other").path
    try Data("6000 10 replaced-a\n7000 10 replaced-b\n".utf8).write(to: URL(fileURLWithPath: other))
    #expect(rename(other, file.path) == 0)
    #expect(map.refresh())
    #expect(map.restarts == 2)
    #expect(map.entryCount == 2)
    #expect(map.name(at: 0x5000) == nil)
    #expect(map.name(at: 0x7000) == "replaced-b")
  }

  @Test func aMissingFileKeepsWhatWasRead() throws {
    let file = try TempFile()
    let map = PerfMap(path: file.path)
    #expect(!map.fileExists)
    #expect(!map.refresh())
    try file.write("1000 10 f\n")
    #expect(map.refresh())
    try FileManager.default.removeItem(atPath: file.path)
    #expect(!map.refresh())
    #expect(map.name(at: 0x1000) == "f")
  }

  @Test func followsALargeFileInChunks() throws {
    let file = try TempFile()
    // Past the 1 MiB read chunk, so lines straddle reads.
    var text = ""
    for index in 0..<60_000 {
      text += "\(String(0x10_0000 + index * 0x40, radix: 16)) 40 function_number_\(index)\n"
    }
    try file.write(text)
    let map = PerfMap(path: file.path)
    map.refresh()
    #expect(map.entryCount == 60_000)
    #expect(map.badLines == 0)
    #expect(map.name(at: 0x10_0000 + 12_345 * 0x40 + 7) == "function_number_12345")
    #expect(map.offset == UInt64(text.utf8.count))
  }
}
