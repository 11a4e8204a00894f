import FlamespanModel
import FlamespanTestSupport
import Foundation
import Testing

@testable import FlamespanSymbolizer

@Suite struct ProcessAndKernelTests {
  /// The mapping of this test process that contains `address`, parsed from /proc/self/maps.
  static func mapping(containing address: UInt64) throws -> Mapping? {
    // /proc files report size 0; read to the end rather than trusting the size.
    let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/maps"))
    defer { try? handle.close() }
    let text = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
    for line in text.split(separator: "\n") {
      let fields = line.split(separator: " ", omittingEmptySubsequences: true)
      guard fields.count >= 6 else { continue }
      let range = fields[0].split(separator: "-")
      guard let start = UInt64(range[0], radix: 16), let limit = UInt64(range[1], radix: 16),
        let offset = UInt64(fields[2], radix: 16), address >= start, address < limit
      else { continue }
      return Mapping(
        start: start, limit: limit, fileOffset: offset, path: fields[5...].joined(separator: " "),
        kind: .file)
    }
    return nil
  }

  @Test("runtime addresses in a live mapping resolve like the file's virtual addresses")
  func liveMapping() throws {
    guard let handle = dlopen(nil, RTLD_NOW), let pointer = dlsym(handle, "getpid") else { return }
    let runtime = UInt64(UInt(bitPattern: pointer))
    let mapping = try #require(try Self.mapping(containing: runtime))
    let symbolizer = Symbolizer()
    let live = symbolizer.symbolize(
      mapping: mapping, addresses: [runtime, runtime + 4, mapping.limit + 16])
    #expect(live.allSatisfy { $0.mapping == mapping })
    #expect(live[2].frames.isEmpty && live[2].unknownReason != nil)

    let exported = try #require(
      try functionSymbols(of: mapping.path, dynamic: true).first { $0.name.hasPrefix("getpid") })
    let offline = try symbolizer.symbolize(
      binary: mapping.path, virtualAddresses: [exported.address, exported.address + 4])
    #expect(live[0].frames == offline[0].frames)
    #expect(live[1].frames == offline[1].frames)
    #expect(live[0].frames.last?.function.contains("getpid") == true)
  }

  @Test("non-file mappings and missing files become unknown with a reason")
  func unknownMappings() {
    let symbolizer = Symbolizer()
    let vdso = Mapping(start: 0x1000, limit: 0x2000, fileOffset: 0, path: "[vdso]", kind: .vdso)
    let anonymous = Mapping(
      start: 0x1000, limit: 0x2000, fileOffset: 0, path: "[anon]", kind: .anonymous)
    let missing = Mapping(
      start: 0x1000, limit: 0x2000, fileOffset: 0, path: "/nonexistent/lib.so", kind: .file)
    for mapping in [vdso, anonymous, missing] {
      let result = symbolizer.symbolize(mapping: mapping, addresses: [0x1800])
      #expect(result.count == 1)
      #expect(result[0].frames.isEmpty)
      #expect(result[0].unknownReason != nil)
      #expect(result[0].mapping == mapping)
    }
  }

  @Test("a build id that differs from the file on disk is reported, not guessed through")
  func buildIDMismatch() throws {
    guard let handle = dlopen(nil, RTLD_NOW), let pointer = dlsym(handle, "getpid") else { return }
    let runtime = UInt64(UInt(bitPattern: pointer))
    var mapping = try #require(try Self.mapping(containing: runtime))
    mapping.buildID = BuildID(bytes: [1, 2, 3, 4])
    let result = Symbolizer().symbolize(mapping: mapping, addresses: [runtime])
    #expect(result[0].frames.isEmpty)
    #expect(result[0].unknownReason?.contains("build id") == true)
  }

  /// Root, because kptr_restrict shows everyone else zeros for addresses.
  @Test("kernel addresses resolve to the kallsyms symbol at or below them", .requires(.root))
  func kernel() throws {
    // Read to the end: /proc files report size 0, and String(contentsOfFile:) stops after one read
    // (about 80 symbols), which used to make this test return early as if addresses were hidden.
    let kallsyms = try #require(FileHandle(forReadingAtPath: "/proc/kallsyms"))
    let text = String(decoding: kallsyms.readDataToEndOfFile(), as: UTF8.self)
    var symbols: [(address: UInt64, name: String, module: String?)] = []
    for line in text.split(separator: "\n") {
      let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
      guard fields.count >= 3, fields[1] == "T", let address = UInt64(fields[0], radix: 16),
        address != 0
      else {
        continue
      }
      symbols.append((address, String(fields[2]), fields.count > 3 ? String(fields[3]) : nil))
    }
    try #require(symbols.count > 1000, "kallsyms hides its addresses (kptr_restrict=2?)")
    // Symbols that alone own their address and the next byte: any other could be the answer too.
    var sharing: [UInt64: Int] = [:]
    for symbol in symbols { sharing[symbol.address, default: 0] += 1 }
    let unique = symbols.filter { symbol in
      sharing[symbol.address + 1] == nil && sharing[symbol.address] == 1
    }
    var generator = SplitMix(seed: 99)
    let picked = (0..<200).map { _ in unique[Int.random(in: 0..<unique.count, using: &generator)] }
    let locations = Symbolizer().symbolizeKernel(addresses: picked.map { $0.address + 1 })
    for (symbol, location) in zip(picked, locations) {
      #expect(location.frames.map(\.function) == [symbol.name])
      if let module = symbol.module {
        #expect(location.mapping?.path == String(module.dropFirst().dropLast()))
      } else {
        #expect(location.mapping?.path == Mapping.kernel.path)
      }
    }
  }

  @Test("kallsyms parsing keeps text symbols, modules, and skips malformed lines")
  func kallsymsParsing() {
    let text = """
      ffffffff81000000 T _stext
      ffffffff81000100 t helper
      ffffffff81000200 D some_data
      garbage line
      ffffffffc0001000 t nft_do_chain\t[nf_tables]
      0000000000000000 T hidden
      """
    let table = KernelSymbols(parsing: Array(text.utf8))
    #expect(table.resolve(0xffff_ffff_8100_0050).frames.map(\.function) == ["_stext"])
    #expect(table.resolve(0xffff_ffff_8100_0250).frames.map(\.function) == ["helper"])
    let module = table.resolve(0xffff_ffff_c000_1010)
    #expect(module.frames.map(\.function) == ["nft_do_chain"])
    #expect(module.mapping?.path == "nf_tables")
    #expect(table.resolve(0x1000).frames.isEmpty)
  }

  @Test(
    "files are parsed once and the cache respects its bound",
    .requires(.systemLibc, .file("/lib/x86_64-linux-gnu/libm.so.6")))
  func caching() throws {
    let libc = systemLibc
    let libm = "/lib/x86_64-linux-gnu/libm.so.6"
    let symbolizer = Symbolizer(options: .init(maxCachedFiles: 1))
    _ = try symbolizer.symbolize(binary: libc, virtualAddresses: [0x30000])
    _ = try symbolizer.symbolize(binary: libc, virtualAddresses: [0x30000, 0x40000])
    var statistics = symbolizer.statistics
    #expect(statistics.filesParsed == 1)
    #expect(statistics.cacheHits == 1)
    _ = try symbolizer.symbolize(binary: libm, virtualAddresses: [0x10000])
    _ = try symbolizer.symbolize(binary: libc, virtualAddresses: [0x30000])
    statistics = symbolizer.statistics
    #expect(statistics.filesParsed == 3)
    #expect(statistics.evictions == 2)
  }
}
