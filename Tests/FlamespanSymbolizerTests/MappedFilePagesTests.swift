import FlamespanTestSupport
import Foundation
import Testing

@testable import FlamespanSymbolizer

/// Giving back pages read through file mappings, and never anything else.
@Suite struct MappedFilePagesTests {
  /// Resident KiB of the mapping that starts at `start`, from /proc/self/smaps; with `fileOnly`, less the
  /// pages written in place (which no release may drop).
  static func residentKiB(of start: UInt, fileOnly: Bool = false) throws -> Int {
    // /proc files report a size of 0, so read to the end rather than by size.
    let handle = try #require(FileHandle(forReadingAtPath: "/proc/self/smaps"))
    defer { try? handle.close() }
    let text = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
    var inside = false
    var resident = -1
    for line in text.split(separator: "\n") {
      if let dash = line.firstIndex(of: "-"), let low = UInt(line[..<dash], radix: 16),
        line.split(separator: " ").count >= 5
      {
        if inside { break }
        inside = low == start
      } else if inside, line.hasPrefix("Rss:") {
        resident = Int(line.split(separator: " ")[1]) ?? -1
        if !fileOnly { return resident }
      } else if inside, line.hasPrefix("Anonymous:") {
        return resident - (Int(line.split(separator: " ")[1]) ?? 0)
      }
    }
    return resident
  }

  @Test("pages of a read-only private file mapping are dropped from RSS and read back intact")
  func fileMapping() throws {
    let directory = try TestEnvironment.temporaryDirectory("sym")
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

    let directory = try TestEnvironment.temporaryDirectory("sym")
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

@Suite struct SymbolizerPageReleaseTests {
  /// The file images `symbolizer` mapped that still have pages resident and backed by the file, with their
  /// KiB. By exact range: other suites running at the same time map the same files (libc's debug file in
  /// particular) through symbolizers of their own, and those pages are not this one's to give back.
  static func residentImages(of symbolizer: Symbolizer) throws -> [String] {
    let images = symbolizer.mappedImagesOfCachedFiles
    try #require(!images.isEmpty, "the symbolizer mapped no file image")
    var resident: [String] = []
    for mapping in MappedFilePages.mappings() where mapping.isPrivateFile {
      guard images.contains(where: { $0.overlaps(mapping.range) }) else { continue }
      let kib = try MappedFilePagesTests.residentKiB(of: mapping.range.lowerBound, fileOnly: true)
      if kib > 0 { resident.append("\(mapping.path ?? "?") \(kib) KiB") }
    }
    return resident
  }

  @Test(
    "after a trim no page read from a symbolized file or its separate debug file stays resident",
    .requires(.systemLibc, .tool("nm")))
  func trimGivesBackFilePages() throws {
    let libc = systemLibc
    let symbolizer = Symbolizer(options: .init(maxCachedFiles: 8, maxCachedBytes: 64 << 20))
    let exported = try functionSymbols(of: libc, dynamic: true).prefix(200)
    _ = try symbolizer.symbolize(binary: libc, virtualAddresses: exported.map(\.address))
    symbolizer.trimToMemoryBudget()
    #expect(symbolizer.statistics.cachedBytes > 0, "the file stays cached")
    let resident = try Self.residentImages(of: symbolizer)
    #expect(resident.isEmpty, "\(resident.count) files, such as \(resident.prefix(3))")
  }

  @Test(
    "a Swift binary's clang module skeleton units do not get their .pcm files opened",
    .requires(.tool("nm")))
  func swiftSkeletonUnits() throws {
    let executable = try #require(
      try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
    let symbols = try functionSymbols(of: executable).filter { $0.name.hasPrefix("$s") }.prefix(100)
    try #require(!symbols.isEmpty)
    let symbolizer = Symbolizer(options: .init(maxCachedFiles: 8, maxCachedBytes: 256 << 20))
    let resolved = try symbolizer.symbolize(
      binary: executable, virtualAddresses: symbols.map(\.address))
    #expect(resolved.contains { !$0.frames.isEmpty })
    let modules = MappedFilePages.mappings().compactMap(\.path).filter { $0.hasSuffix(".pcm") }
    #expect(modules.isEmpty, "\(modules.count) mappings, such as \(modules.prefix(3))")
    symbolizer.trimToMemoryBudget()
    let resident = try Self.residentImages(of: symbolizer)
    #expect(resident.isEmpty, "\(resident.count) files, such as \(resident.prefix(3))")
  }
}
