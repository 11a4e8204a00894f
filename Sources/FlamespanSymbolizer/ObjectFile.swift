import CLibDW
import FlamespanELF
import FlamespanModel

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// One ELF file opened through libdwfl, with its symbol table, load segments and (when present) DWARF index.
/// Not thread-safe: the `Symbolizer` serialises access.
final class ObjectFile {
  let path: String
  let buildID: BuildID?
  /// Its headers: the PT_LOAD segments turn file offsets into the virtual addresses DWARF speaks.
  let layout: ELFFile
  private let configuration: DwflConfiguration
  private let session: OpaquePointer
  private let symbols: SymbolTable
  /// The file images libelf mapped: the binary's and, when DWARF comes from a separate debug file, that one.
  private(set) var mappedImages: [Range<UInt>] = []
  /// The same files by resolved path: libdwfl may hand out a different image than the one it mapped (for
  /// relocatable files such as Swift's clang module containers), so ranges alone can miss mappings.
  private var mappedPaths: Set<String> = []
  /// Where the symbols' names are; nil when the file has no symbol table.
  private let symbolNames: SymbolSection?
  private let dwarf: DwarfIndex?
  /// Why there is no DWARF, for unknown results and diagnostics.
  let dwarfUnavailableReason: String?
  /// By name offset in the string table.
  private var demangledSymbols: [UInt32: DemangledName] = [:]
  private var demangledBytes = 0
  /// Bytes of the file's symbol table, read through libelf's mapping of the file.
  private var symbolSectionBytes = 0

  init(path: String, configuration: DwflConfiguration) throws(SymbolizerError) {
    self.path = path
    self.configuration = configuration
    guard let session = dwfl_begin(configuration.callbacks) else {
      throw SymbolizerError(
        code: .dwarfError, path: path, message: "dwfl_begin failed: \(DwflMessage.last)")
    }
    self.session = session
    dwfl_report_begin(session)
    let reportedModule = path.withCString { dwfl_report_elf(session, $0, $0, -1, 0, true) }
    dwfl_report_end(session, nil, nil)
    guard let module = reportedModule else {
      let message = DwflMessage.last
      dwfl_end(session)
      throw SymbolizerError(code: .corruptELF, path: path, message: "unreadable ELF: \(message)")
    }
    var elfBias: GElf_Addr = 0
    guard let elf = dwfl_module_getelf(module, &elfBias) else {
      let message = DwflMessage.last
      dwfl_end(session)
      throw SymbolizerError(code: .corruptELF, path: path, message: "unreadable ELF: \(message)")
    }
    do {
      let headers = try Self.readHeaders(path: path)
      layout = headers.layout
      buildID = headers.buildID
    } catch {
      dwfl_end(session)
      throw error
    }

    var dwarfBias: Dwarf_Addr = 0
    let debugData = dwfl_module_getdwarf(module, &dwarfBias)
    if let debugData {
      // Module addresses equal the file's own virtual addresses (reported at base 0); the debug file may be
      // laid out differently, which the bias accounts for.
      dwarf = DwarfIndex(dwarf: debugData, bias: dwarfBias &- elfBias)
      dwarfUnavailableReason = nil
    } else {
      dwarf = nil
      dwarfUnavailableReason = "no DWARF: \(DwflMessage.last)"
    }

    var table = ELFReader.symbolSection(elf: elf, preferring: UInt32(SHT_SYMTAB))
    symbolSectionBytes = table?.symbolBytes ?? 0
    if table?.entries.isEmpty ?? true, let debugData, let debugELF = dwarf_getelf(debugData),
      let fromDebugFile = ELFReader.symbolSection(elf: debugELF, preferring: UInt32(SHT_SYMTAB))
    {
      table = fromDebugFile
      symbolSectionBytes += fromDebugFile.symbolBytes
    }
    mappedImages = [elf, debugData.flatMap { dwarf_getelf($0) }].compactMap { image in
      var size = 0
      guard let image, let start = elf_rawfile(image, &size), size > 0 else { return nil }
      let low = UInt(bitPattern: start)
      return low..<(low + UInt(size))
    }
    var mainFile: UnsafePointer<CChar>? = nil
    var debugFile: UnsafePointer<CChar>? = nil
    _ = dwfl_module_info(module, nil, nil, nil, nil, nil, &mainFile, &debugFile)
    for name in [path, mainFile.map { String(cString: $0) }, debugFile.map { String(cString: $0) }]
    {
      guard let name, let resolved = realpath(name, nil) else { continue }
      mappedPaths.insert(String(cString: resolved))
      free(resolved)
    }
    symbols = SymbolTable(symbols: table?.entries ?? [])
    // The table keeps its own sorted copy; the reader's is dropped here.
    table?.entries = []
    symbolNames = table
  }

  /// Segments and build id through FlamespanELF, and the file's size against what its headers promise:
  /// a file cut short keeps a valid header, and libelf reads what is there, which would give "no
  /// symbols" for every address.
  private static func readHeaders(path: String) throws(SymbolizerError) -> (
    layout: ELFFile, buildID: BuildID?
  ) {
    guard let file = FileBytes(path: path) else {
      throw SymbolizerError(code: .ioError, path: path, errno: errno, message: "cannot open file")
    }
    let layout: ELFFile
    do throws(ELFError) {
      layout = try ELFFile(read: file.read)
    } catch {
      throw SymbolizerError(
        code: .corruptELF, path: path, message: "bad ELF headers: \(error.reason)")
    }
    if let size = file.size, let reason = layout.truncation(fileSize: size) {
      throw SymbolizerError(code: .corruptELF, path: path, message: "truncated ELF: \(reason)")
    }
    return (layout, layout.gnuBuildID(read: file.read).map { BuildID(bytes: $0) })
  }

  /// An estimate of the memory this open file holds between batches: its symbol table, its DWARF index
  /// and what libdw derived from the DWARF read so far, its name caches, and the symbol table pages that
  /// could not be given back. Pages of the file read during a batch (string table, DWARF) are not
  /// counted: `Symbolizer.trimToMemoryBudget()` gives them back. It grows as addresses are looked up,
  /// since DWARF units are indexed and names read on first use.
  var estimatedBytes: Int {
    // libdwfl's session, libelf's descriptors and section tables: a few KiB, however small the file.
    let fixed = 16 << 10
    return fixed + symbols.estimatedBytes + symbolSectionBytes + demangledBytes
      + (dwarf?.estimatedBytes ?? 0)
  }

  deinit {
    dwfl_end(session)
  }

  /// Drops the pages of the file read so far from this process's RSS (see `MappedFilePages`); lookups read
  /// what they need again. Returns the bytes released.
  @discardableResult
  func releaseResidentPages(mappings: [MappedFilePages.Mapping]) -> Int {
    // By path only files this process does not run itself: its own libraries' mappings belong to the
    // dynamic loader, and one of their data pages written between the smaps read and the release would
    // be lost.
    let loaded = Set(mappings.lazy.filter(\.isExecutable).compactMap(\.path))
    let mine = mappings.filter { mapping in
      if mappedImages.contains(where: { $0.overlaps(mapping.range) }) { return true }
      guard let path = mapping.path, !loaded.contains(path) else { return false }
      return mappedPaths.contains(String(path))
    }
    return MappedFilePages.release(mine, within: 0..<UInt.max)
  }

  /// Frames for one ELF virtual address, innermost first, or the reason there are none.
  func resolve(virtualAddress address: UInt64) -> (frames: [SourceFrame], reason: String?) {
    // Past the loaded image a zero-sized symbol such as `_end` would otherwise "cover" any address.
    guard layout.isLoaded(virtualAddress: address) else {
      return ([], "0x\(String(address, radix: 16)) is outside every PT_LOAD segment")
    }
    let symbol = symbols.symbol(containing: address)
    var frames = dwarf?.frames(at: address) ?? []
    if let symbol, let name = demangled(symbol.nameOffset) {
      // Like llvm-symbolizer: the symbol table names the outermost function (it sees `.cold`/`.constprop`
      // clones that DWARF names after their origin).
      if frames.isEmpty {
        frames = [SourceFrame(function: name.display, systemName: name.systemName)]
      } else {
        frames[frames.count - 1].function = name.display
        frames[frames.count - 1].systemName = name.systemName
      }
    }
    if frames.isEmpty {
      if symbols.isEmpty && dwarf == nil {
        return ([], "no symbols: no symbol table and \(dwarfUnavailableReason ?? "no DWARF")")
      }
      return ([], "no symbol or debug information covers 0x\(String(address, radix: 16))")
    }
    return (frames, nil)
  }

  private func demangled(_ nameOffset: UInt32) -> DemangledName? {
    if let known = demangledSymbols[nameOffset] { return known }
    guard let name = symbolNames?.name(at: nameOffset) else { return nil }
    let result = DemangledName(mangled: name)
    demangledSymbols[nameOffset] = result
    demangledBytes += result.estimatedBytes
    return result
  }
}

/// A display name plus the original when demangling changed it.
struct DemangledName {
  var display: String
  var systemName: String?

  /// Heap bytes of one cache entry holding this name: the dictionary slot and the out-of-line strings.
  var estimatedBytes: Int {
    func heap(_ text: String?) -> Int {
      guard let count = text?.utf8.count, count > 15 else { return 0 }
      return (count + 32 + 15) & ~15
    }
    return 64 + heap(display) + heap(systemName)
  }

  init(mangled: String) {
    if let text = Demangler.demangle(mangled), text != mangled {
      display = text
      systemName = mangled
    } else {
      display = mangled
      systemName = nil
    }
  }
}
