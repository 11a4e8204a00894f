import Foundation
import Testing

@testable import FlamespanSymbolizer

/// Giving back pages read through file mappings, and never anything else.
@Suite struct MappedFilePagesTests {
  /// Resident KiB of the mapping that starts at `start`, from /proc/self/smaps.
  static func residentKiB(of start: UInt) throws -> Int {
    // /proc files report a size of 0, so read to the end rather than by size.
    let handle = try #require(FileHandle(forReadingAtPath: "/proc/self/smaps"))
    defer { try? handle.close() }
    let text = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
    var inside = false
    for line in text.split(separator: "\n") {
      if let dash = line.firstIndex(of: "-"), let low = UInt(line[..<dash], radix: 16),
        line.split(separator: " ").count >= 5
      {
        inside = low == start
      } else if inside, line.hasPrefix("Rss:") {
        return Int(line.split(separator: " ")[1]) ?? -1
      }
    }
    return -1
  }

  @Test("pages of a read-only private file mapping are dropped from RSS and read back intact")
  func fileMapping() throws {
    let directory = try makeTemporaryDirectory()
    let path = directory.appendingPathComponent("data").path
    let bytes = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    let descriptor = open(path, O_RDONLY)
    try #require(descriptor >= 0)
    defer { close(descriptor) }
    let map = try #require(
      mmap(nil, bytes.count, PROT_READ, MAP_PRIVATE, descriptor, 0).flatMap {
        $0 == MAP_FAILED ? nil : $0
      })
    defer { munmap(map, bytes.count) }
    let view = map.assumingMemoryBound(to: UInt8.self)
    var sum = 0
    for index in stride(from: 0, to: bytes.count, by: 4096) { sum &+= Int(view[index]) }
    let start = UInt(bitPattern: map)
    let residentBefore = try Self.residentKiB(of: start)
    #expect(residentBefore >= 1024, "sum \(sum)")
    let released = MappedFilePages.release(
      start..<(start + UInt(bytes.count)), mappings: MappedFilePages.mappings())
    #expect(released == bytes.count)
    #expect(try Self.residentKiB(of: start) == 0)
    #expect(Array(UnsafeBufferPointer(start: view, count: bytes.count)) == bytes)
  }

  @Test("heap memory and written private mappings are left alone")
  func nonFileMemory() throws {
    let count = 1 << 20
    let heap = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 4096)
    defer { heap.deallocate() }
    heap.initializeMemory(as: UInt8.self, repeating: 0xA5, count: count)
    let start = UInt(bitPattern: heap)
    #expect(
      MappedFilePages.release(start..<(start + UInt(count)), mappings: MappedFilePages.mappings())
        == 0)
    #expect(heap.load(fromByteOffset: count / 2, as: UInt8.self) == 0xA5)

    let directory = try makeTemporaryDirectory()
    let path = directory.appendingPathComponent("written").path
    try Data(repeating: 1, count: count).write(to: URL(fileURLWithPath: path))
    let descriptor = open(path, O_RDONLY)
    try #require(descriptor >= 0)
    defer { close(descriptor) }
    let map = try #require(
      mmap(nil, count, PROT_READ | PROT_WRITE, MAP_PRIVATE, descriptor, 0).flatMap {
        $0 == MAP_FAILED ? nil : $0
      })
    defer { munmap(map, count) }
    map.storeBytes(of: 9, toByteOffset: 8192, as: UInt8.self)
    let mapStart = UInt(bitPattern: map)
    #expect(
      MappedFilePages.release(
        mapStart..<(mapStart + UInt(count)), mappings: MappedFilePages.mappings()) == 0)
    #expect(map.load(fromByteOffset: 8192, as: UInt8.self) == 9)
  }
}
