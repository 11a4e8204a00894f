import CLibDW
import FlamespanModel

/// Reads the few ELF structures the symbolizer needs through libelf's checked accessors, so truncated or
/// inconsistent tables end as errors or empty results instead of out-of-bounds reads.
enum ELFReader {
  static func loadSegments(elf: OpaquePointer, path: String) throws(SymbolizerError) -> LoadSegments
  {
    var count = 0
    guard elf_getphdrnum(elf, &count) == 0 else {
      throw SymbolizerError(
        code: .corruptELF, path: path, message: "bad program headers: \(ELFMessage.last)")
    }
    var segments: [LoadSegments.Segment] = []
    for index in 0..<count {
      var header = GElf_Phdr()
      guard gelf_getphdr(elf, Int32(index), &header) != nil else {
        throw SymbolizerError(
          code: .corruptELF, path: path, message: "bad program header \(index): \(ELFMessage.last)")
      }
      if header.p_type == UInt32(PT_LOAD) {
        segments.append(
          .init(
            fileOffset: header.p_offset, fileSize: header.p_filesz, virtualAddress: header.p_vaddr,
            memorySize: header.p_memsz))
      }
    }
    return LoadSegments(segments: segments)
  }

  static func buildID(module: OpaquePointer) -> BuildID? {
    var bits: UnsafePointer<UInt8>? = nil
    var address: GElf_Addr = 0
    let length = dwfl_module_build_id(module, &bits, &address)
    guard length > 0, let bits else { return nil }
    return BuildID(bytes: Array(UnsafeBufferPointer(start: bits, count: Int(length))))
  }

  /// Function-like symbols of `.symtab` (or `.dynsym` when there is no `.symtab`), in table order. Undefined,
  /// absolute and non-code symbol kinds are left out, as llvm-symbolizer does.
  static func symbols(elf: OpaquePointer, preferring kind: UInt32) -> [SymbolTable.Entry] {
    var symtab: OpaquePointer? = nil
    var dynsym: OpaquePointer? = nil
    var section = elf_nextscn(elf, nil)
    while let current = section {
      var header = GElf_Shdr()
      if gelf_getshdr(current, &header) != nil {
        if header.sh_type == UInt32(SHT_SYMTAB) && symtab == nil { symtab = current }
        if header.sh_type == UInt32(SHT_DYNSYM) && dynsym == nil { dynsym = current }
      }
      section = elf_nextscn(elf, current)
    }
    guard let chosen = (kind == UInt32(SHT_SYMTAB) ? symtab : nil) ?? dynsym else { return [] }
    return entries(elf: elf, section: chosen)
  }

  private static func entries(elf: OpaquePointer, section: OpaquePointer) -> [SymbolTable.Entry] {
    var header = GElf_Shdr()
    guard gelf_getshdr(section, &header) != nil, header.sh_entsize > 0,
      let data = elf_getdata(section, nil)
    else { return [] }
    let count = Int(header.sh_size / header.sh_entsize)
    var result: [SymbolTable.Entry] = []
    result.reserveCapacity(count)
    for index in 0..<count {
      var symbol = GElf_Sym()
      guard gelf_getsym(data, Int32(index), &symbol) != nil else { break }
      let type = Int32(symbol.st_info & 0xf)
      guard type == STT_FUNC || type == STT_NOTYPE || type == STT_OBJECT || type == STT_GNU_IFUNC
      else {
        continue
      }
      let sectionIndex = Int32(symbol.st_shndx)
      guard sectionIndex != SHN_UNDEF, sectionIndex != SHN_ABS, sectionIndex != SHN_COMMON else {
        continue
      }
      guard let namePointer = elf_strptr(elf, Int(header.sh_link), Int(symbol.st_name)) else {
        continue
      }
      let name = String(cString: namePointer)
      // Assembler mapping and local labels name no function.
      if type == STT_NOTYPE && (name.isEmpty || name.hasPrefix("$") || name.hasPrefix(".L")) {
        continue
      }
      result.append(.init(address: symbol.st_value, size: symbol.st_size, name: name))
    }
    return result
  }
}

enum ELFMessage {
  static var last: String {
    if let text = elf_errmsg(-1) { return String(cString: text) }
    return "unknown libelf error"
  }
}
