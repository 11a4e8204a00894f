import FlamespanELF

/// What inline-tree decoding needs of the binary's module data (`runtime.firstmoduledata`): `gofunc`,
/// the link-time address that funcdata offsets (Go 1.18+) are relative to, and the bytes from there to
/// the end of its section (`go:func.*` lies inside `.rodata`).
///
/// Stripped binaries have no symbol for the module data, so it is found by content: its first field is
/// the pclntab's header pointer, and its funcnametab and pctab slices point into the same table. The
/// linker writes these words into the file even for PIE (alongside the dynamic relocations), so the
/// scan reads `.noptrdata`, `.data` and `.data.rel.ro` as they are on disk.
public struct GoFuncData: Sendable {
  /// Link-time address of `go:func.*` (moduledata.gofunc).
  public let address: UInt64
  let bytes: GoTableBytes

  public init(address: UInt64, bytes: [UInt8]) {
    self.address = address
    self.bytes = GoTableBytes(bytes: bytes)
  }

  /// The sections the linker may put `runtime.firstmoduledata` in.
  static let moduleDataSections = [".noptrdata", ".data", ".data.rel.ro"]
  /// Larger than any real data section; bigger ones are not scanned.
  static let maximumScannedSize: UInt64 = 1 << 28

  /// Pointer-sized words before `gofunc` in moduledata (runtime/symtab.go). pcHeader (1), six slices
  /// funcnametab..ftab (18), findfunctab, minpc, maxpc (3), text..enoptrbss (10), end, gcdata, gcbss
  /// (3), types, etypes, rodata (3): gofunc is word 38 in Go 1.18/1.19. Go 1.20 added covctrs and
  /// ecovctrs after enoptrbss, so from 1.20 on it is word 40 (later additions, such as epclntab in
  /// 1.26, come after gofunc).
  static func gofuncWord(_ version: GoPCLNTable.Version) -> Int { version == .go118 ? 38 : 40 }
  /// Words of moduledata checked against the table: funcnametab's and pctab's data pointers.
  static let funcnametabWord = 1
  static let pctabWord = 10

  /// Finds the module data of the table at link-time address `tableAddress`, and reads `gofunc`'s
  /// section from `gofunc` on.
  static func locate(
    elf: ELFFile, table: GoPCLNTable, tableAddress: UInt64, read: (UInt64, Int) -> [UInt8]?
  ) throws(GoPCLNError) -> GoFuncData {
    let size = Int(table.pointerSize)
    let gofuncWord = gofuncWord(table.version)
    let needed = (gofuncWord + 1) * size
    for section in moduleDataSections.compactMap({ elf.section(named: $0) })
    where section.hasFileBytes && !section.isCompressed && section.size >= UInt64(needed)
      && section.size <= maximumScannedSize
    {
      guard let raw = read(section.fileOffset, Int(section.size)) else { continue }
      let data = GoTableBytes(bytes: raw)
      var offset: UInt64 = 0
      while offset + UInt64(needed) <= UInt64(raw.count) {
        defer { offset += UInt64(size) }
        guard (try? data.word(offset, size: size, "moduledata")) == tableAddress else { continue }
        func word(_ index: Int) -> UInt64? {
          try? data.word(offset + UInt64(index * size), size: size, "moduledata word \(index)")
        }
        guard word(funcnametabWord) == tableAddress &+ table.funcnameOffset,
          word(pctabWord) == tableAddress &+ table.pctabOffset,
          let gofunc = word(gofuncWord)
        else { continue }
        return try load(gofunc: gofunc, elf: elf, read: read)
      }
    }
    throw GoPCLNError(.malformed, "no module data points at the table")
  }

  /// Reads `gofunc`'s section from `gofunc` to its end.
  static func load(gofunc: UInt64, elf: ELFFile, read: (UInt64, Int) -> [UInt8]?)
    throws(GoPCLNError) -> GoFuncData
  {
    guard
      let section = elf.sections.first(where: {
        $0.hasFileBytes && !$0.isCompressed && $0.address != 0 && gofunc >= $0.address
          && gofunc - $0.address < $0.size
      })
    else {
      throw GoPCLNError(
        .malformed, "gofunc 0x\(String(gofunc, radix: 16)) lies in no section of the file")
    }
    let skip = gofunc - section.address
    let length = section.size - skip
    guard length <= maximumScannedSize, let bytes = read(section.fileOffset + skip, Int(length))
    else {
      throw GoPCLNError(.truncated, "gofunc's section \(section.name) is unreadable")
    }
    return GoFuncData(address: gofunc, bytes: bytes)
  }
}
