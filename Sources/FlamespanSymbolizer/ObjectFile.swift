import CLibDW
import FlamespanModel

/// One ELF file opened through libdwfl, with its symbol table, load segments and (when present) DWARF index.
/// Not thread-safe: the `Symbolizer` serialises access.
final class ObjectFile {
  let path: String
  let buildID: BuildID?
  let segments: LoadSegments
  private let configuration: DwflConfiguration
  private let session: OpaquePointer
  private let symbols: SymbolTable
  private let dwarf: DwarfIndex?
  /// Why there is no DWARF, for unknown results and diagnostics.
  let dwarfUnavailableReason: String?
  private var demangledSymbols: [String: DemangledName] = [:]

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
      segments = try ELFReader.loadSegments(elf: elf, path: path)
    } catch {
      dwfl_end(session)
      throw error
    }
    buildID = ELFReader.buildID(module: module)

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

    var table = ELFReader.symbols(elf: elf, preferring: UInt32(SHT_SYMTAB))
    if table.isEmpty, let debugData, let debugELF = dwarf_getelf(debugData) {
      table = ELFReader.symbols(elf: debugELF, preferring: UInt32(SHT_SYMTAB))
    }
    symbols = SymbolTable(symbols: table)
  }

  deinit {
    dwfl_end(session)
  }

  /// Frames for one ELF virtual address, innermost first, or the reason there are none.
  func resolve(virtualAddress address: UInt64) -> (frames: [SourceFrame], reason: String?) {
    // Past the loaded image a zero-sized symbol such as `_end` would otherwise "cover" any address.
    guard segments.containsVirtualAddress(address) else {
      return ([], "0x\(String(address, radix: 16)) is outside every PT_LOAD segment")
    }
    let symbol = symbols.symbol(containing: address)
    var frames = dwarf?.frames(at: address) ?? []
    if let symbol {
      // Like llvm-symbolizer: the symbol table names the outermost function (it sees `.cold`/`.constprop`
      // clones that DWARF names after their origin).
      let name = demangled(symbol.name)
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

  private func demangled(_ name: String) -> DemangledName {
    if let known = demangledSymbols[name] { return known }
    let result = DemangledName(mangled: name)
    demangledSymbols[name] = result
    return result
  }
}

/// A display name plus the original when demangling changed it.
struct DemangledName {
  var display: String
  var systemName: String?

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
