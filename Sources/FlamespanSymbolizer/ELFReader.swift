import CLibDW
import FlamespanModel

/// Reads symbol tables through libelf's checked accessors, so truncated or inconsistent tables end as
/// errors or empty results instead of out-of-bounds reads. (Headers, segments and notes come from
/// FlamespanELF.)
enum ELFReader {
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
