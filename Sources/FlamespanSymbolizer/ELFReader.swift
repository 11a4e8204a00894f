import CLibDW
import FlamespanModel

/// Reads the few ELF structures the symbolizer needs through libelf's checked accessors, so truncated or
/// inconsistent tables end as errors or empty results instead of out-of-bounds reads.
enum ELFReader {
  /// A file cut short (a copy that stopped, a full disk) still has a valid header, and libelf reads what
  /// is there: it would give "no symbols" for every address. Every table and loaded segment the header
  /// promises must lie inside the file.
  static func checkComplete(elf: OpaquePointer, path: String) throws(SymbolizerError) {
    var fileSize = 0
    guard elf_rawfile(elf, &fileSize) != nil, fileSize > 0 else { return }
    let size = UInt64(fileSize)
    func truncated(_ what: String, endingAt end: UInt64) -> SymbolizerError {
      SymbolizerError(
        code: .corruptELF, path: path,
        message: "truncated ELF: \(what) ends at byte \(end), but the file has \(size) bytes")
    }
    var header = GElf_Ehdr()
    guard gelf_getehdr(elf, &header) != nil else { return }
    // The header's count, unless it overflowed into section 0 (then libelf reads it from there).
    var sectionCount = Int(header.e_shnum)
    if sectionCount == 0, elf_getshdrnum(elf, &sectionCount) != 0 { sectionCount = 1 }
    if header.e_shoff != 0 {
      let end = header.e_shoff + UInt64(sectionCount) * UInt64(header.e_shentsize)
      if end > size { throw truncated("the section header table", endingAt: end) }
    }
    var section = elf_nextscn(elf, nil)
    while let current = section {
      var sectionHeader = GElf_Shdr()
      if gelf_getshdr(current, &sectionHeader) != nil, sectionHeader.sh_type != UInt32(SHT_NOBITS) {
        let (end, overflow) = sectionHeader.sh_offset.addingReportingOverflow(sectionHeader.sh_size)
        if overflow || end > size {
          throw truncated("section \(elf_ndxscn(current))", endingAt: end)
        }
      }
      section = elf_nextscn(elf, current)
    }
    var segmentCount = 0
    if elf_getphdrnum(elf, &segmentCount) == 0 {
      for index in 0..<segmentCount {
        var segment = GElf_Phdr()
        guard gelf_getphdr(elf, Int32(index), &segment) != nil,
          segment.p_type == UInt32(PT_LOAD)
        else { continue }
        let (end, overflow) = segment.p_offset.addingReportingOverflow(segment.p_filesz)
        if overflow || end > size { throw truncated("loaded segment \(index)", endingAt: end) }
      }
    }
  }

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
  /// absolute and non-code symbol kinds are left out, as llvm-symbolizer does. Nil when the file has
  /// neither table.
  static func symbolSection(elf: OpaquePointer, preferring kind: UInt32) -> SymbolSection? {
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
    guard let chosen = (kind == UInt32(SHT_SYMTAB) ? symtab : nil) ?? dynsym,
      let read = entries(elf: elf, section: chosen)
    else { return nil }
    return SymbolSection(
      elf: elf, stringSection: read.stringSection, entries: read.entries,
      symbolBytes: read.symbolBytes)
  }

  private static func entries(elf: OpaquePointer, section: OpaquePointer) -> (
    entries: [SymbolTable.Entry], stringSection: Int, symbolBytes: Int
  )? {
    var header = GElf_Shdr()
    guard gelf_getshdr(section, &header) != nil, header.sh_entsize > 0,
      let data = elf_getdata(section, nil)
    else { return nil }
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
      // Only a name that cannot be read, or (for untyped symbols, which include assembler mapping and
      // local labels that name no function) an empty or label-like one, is looked at here. The rest are
      // read on lookup, so most of the string table is never touched.
      guard let namePointer = elf_strptr(elf, Int(header.sh_link), Int(symbol.st_name)) else {
        continue
      }
      if type == STT_NOTYPE {
        let first = UInt8(bitPattern: namePointer[0])
        if first == 0 || first == UInt8(ascii: "$")
          || (first == UInt8(ascii: ".") && UInt8(bitPattern: namePointer[1]) == UInt8(ascii: "L"))
        {
          continue
        }
      }
      result.append(
        .init(
          address: symbol.st_value, size: UInt32(clamping: symbol.st_size),
          nameOffset: symbol.st_name))
    }
    // Read once into `result`; what stays resident of the table is then only what could not be released.
    let released = MappedFilePages.release(data.pointee.d_buf, count: data.pointee.d_size)
    return (result, Int(header.sh_link), max(Int(clamping: header.sh_size) - released, 0))
  }
}

/// Symbols read from one ELF file, with what their names need: the file (owned by the libdwfl session of
/// the `ObjectFile`, which outlives this) and its string table section.
struct SymbolSection {
  let elf: OpaquePointer
  let stringSection: Int
  var entries: [SymbolTable.Entry]
  /// Bytes of the symbol table section read through libelf's mapping of the file that are still resident
  /// (those `MappedFilePages` could not give back).
  let symbolBytes: Int

  func name(at offset: UInt32) -> String? {
    guard let pointer = elf_strptr(elf, stringSection, Int(offset)) else { return nil }
    return String(cString: pointer)
  }
}

enum ELFMessage {
  static var last: String {
    if let text = elf_errmsg(-1) { return String(cString: text) }
    return "unknown libelf error"
  }
}
