/// The layout of an ELF file (ELF32 or ELF64, either byte order): its loadable segments, its note areas
/// and its named sections. Only headers are read here; section bytes are read by whoever needs them,
/// through the same `read` function, so a 1 GB binary costs a few kilobytes to open. This is the
/// profiler's one reader of ELF headers: the process inspector (build ids), the unwinder (CFI sections),
/// the runtimes (Go tables) and the symbolizer (segments, build id, completeness) all use it; only
/// DWARF and symbol tables are read through libdw/libelf, in the symbolizer.
public struct ELFFile: Sendable {
  /// A PT_LOAD program header.
  public struct Segment: Sendable, Hashable {
    public var fileOffset: UInt64
    public var fileSize: UInt64
    public var virtualAddress: UInt64
    public var memorySize: UInt64
    /// PF_X: the segment holds code.
    public var isExecutable: Bool
  }

  public struct Section: Sendable, Hashable {
    public var name: String
    public var type: UInt32
    public var flags: UInt64
    /// Link-time address; 0 for sections that are not loaded.
    public var address: UInt64
    public var fileOffset: UInt64
    public var size: UInt64
    public var alignment: UInt64

    /// SHT_NOBITS (.bss): it occupies memory but no bytes of the file.
    public var hasFileBytes: Bool { type != 8 }
    /// SHF_COMPRESSED: the bytes start with an Elf64_Chdr and are zlib or zstd data.
    public var isCompressed: Bool { flags & 0x800 != 0 }
  }

  /// Bytes of the file that hold ELF notes: a PT_NOTE segment or an SHT_NOTE section.
  public struct NoteArea: Sendable, Hashable {
    public var fileOffset: UInt64
    public var size: UInt64
    /// 8 for notes padded to 8 bytes (such as .note.gnu.property), otherwise 4.
    public var alignment: UInt64
  }

  /// ELFCLASS64 rather than ELFCLASS32.
  public let is64Bit: Bool
  /// ELFDATA2MSB rather than ELFDATA2LSB.
  public let isBigEndian: Bool
  public private(set) var segments: [Segment] = []
  public private(set) var sections: [Section] = []
  /// PT_NOTE segments first (they survive `strip --strip-all` of section headers and are what loaders
  /// see), then SHT_NOTE sections (all a relocatable object has).
  public private(set) var noteAreas: [NoteArea] = []
  /// Where the header says the section header table is: (file offset, bytes).
  private var sectionTable: (offset: UInt64, size: UInt64) = (0, 0)

  /// Program and section header tables with more entries than this are refused: no real file has them,
  /// and a corrupt count must not cost a large read.
  static let maximumProgramHeaders = 4096
  static let maximumSections = 65280

  /// Reads an x86-64 or arm64 file, ELF64 little-endian (the profiler's code paths read its sections as
  /// such), from `read(offset, count)`, which returns nil when those bytes do not exist. A file without
  /// section headers (some stripped or packed binaries) has segments only; a file whose section names
  /// cannot be read has sections without names.
  public init(read: (UInt64, Int) -> [UInt8]?) throws(ELFError) {
    try self.init(read: read, anyLayout: false)
    guard is64Bit, !isBigEndian else { throw ELFError("not a little-endian ELF64 file") }
  }

  /// Reads a file of any class and byte order, for what is the same in all of them: segments, notes
  /// and section names (a 32-bit program's build id, say).
  public init(readingAnyLayout read: (UInt64, Int) -> [UInt8]?) throws(ELFError) {
    try self.init(read: read, anyLayout: true)
  }

  private init(read: (UInt64, Int) -> [UInt8]?, anyLayout: Bool) throws(ELFError) {
    guard let identity = read(0, 16), identity.count == 16 else {
      throw ELFError("shorter than an ELF header")
    }
    guard identity[0] == 0x7f, identity[1] == 0x45, identity[2] == 0x4c, identity[3] == 0x46 else {
      throw ELFError("not an ELF file")
    }
    switch identity[4] {
    case 1: is64Bit = false
    case 2: is64Bit = true
    default: throw ELFError("unknown ELF class \(identity[4])")
    }
    switch identity[5] {
    case 1: isBigEndian = false
    case 2: isBigEndian = true
    default: throw ELFError("unknown ELF byte order \(identity[5])")
    }
    // Nothing past the identity is read from a file the caller cannot use.
    guard anyLayout || (is64Bit && !isBigEndian) else { return }
    let fields = FieldReader(is64Bit: is64Bit, bigEndian: isBigEndian)
    guard let header = read(0, fields.fileHeaderSize), header.count == fields.fileHeaderSize else {
      throw ELFError("shorter than an ELF header")
    }
    try readProgramHeaders(header: header, fields: fields, read: read)
    readSectionHeaders(header: header, fields: fields, read: read)
  }

  private mutating func readProgramHeaders(
    header: [UInt8], fields: FieldReader, read: (UInt64, Int) -> [UInt8]?
  ) throws(ELFError) {
    let tableOffset = fields.address(header, is64Bit ? 0x20 : 0x1c)
    let entrySize = Int(fields.u16(header, is64Bit ? 0x36 : 0x2a))
    let count = Int(fields.u16(header, is64Bit ? 0x38 : 0x2c))
    guard count > 0 else { return }
    guard entrySize >= fields.programHeaderSize, count < Self.maximumProgramHeaders,
      let table = read(tableOffset, entrySize * count), table.count == entrySize * count
    else { throw ELFError("program headers unreadable") }
    for index in 0..<count {
      let base = index * entrySize
      let type = fields.u32(table, base)
      // Elf64_Phdr puts p_flags second; Elf32_Phdr puts it after the sizes.
      let flags = fields.u32(table, base + (is64Bit ? 4 : 24))
      let fileOffset = fields.address(table, base + (is64Bit ? 8 : 4))
      let virtualAddress = fields.address(table, base + (is64Bit ? 16 : 8))
      let fileSize = fields.address(table, base + (is64Bit ? 32 : 16))
      let memorySize = fields.address(table, base + (is64Bit ? 40 : 20))
      let alignment = fields.address(table, base + (is64Bit ? 48 : 28))
      switch type {
      case 1:  // PT_LOAD
        segments.append(
          Segment(
            fileOffset: fileOffset, fileSize: fileSize, virtualAddress: virtualAddress,
            memorySize: memorySize, isExecutable: flags & 1 != 0))
      case 4:  // PT_NOTE
        noteAreas.append(NoteArea(fileOffset: fileOffset, size: fileSize, alignment: alignment))
      default: break
      }
    }
  }

  private mutating func readSectionHeaders(
    header: [UInt8], fields: FieldReader, read: (UInt64, Int) -> [UInt8]?
  ) {
    let tableOffset = fields.address(header, is64Bit ? 0x28 : 0x20)
    let entrySize = Int(fields.u16(header, is64Bit ? 0x3a : 0x2e))
    let count = Int(fields.u16(header, is64Bit ? 0x3c : 0x30))
    let namesIndex = Int(fields.u16(header, is64Bit ? 0x3e : 0x32))
    if tableOffset != 0 {
      sectionTable = (tableOffset, UInt64(count) * UInt64(entrySize))
    }
    guard tableOffset != 0, count > 0, count < Self.maximumSections,
      entrySize >= fields.sectionHeaderSize,
      let table = read(tableOffset, entrySize * count), table.count == entrySize * count
    else { return }
    func rawSection(_ index: Int) -> (name: UInt32, section: Section) {
      let base = index * entrySize
      let word = is64Bit ? 8 : 4
      return (
        fields.u32(table, base),
        Section(
          name: "", type: fields.u32(table, base + 4),
          flags: fields.address(table, base + 8),
          address: fields.address(table, base + 8 + word),
          fileOffset: fields.address(table, base + 8 + 2 * word),
          size: fields.address(table, base + 8 + 3 * word),
          alignment: fields.address(table, base + 16 + 4 * word))
      )
    }
    var names: [UInt8] = []
    if namesIndex < count {
      let namesHeader = rawSection(namesIndex).section
      if namesHeader.size < 1 << 24, let bytes = read(namesHeader.fileOffset, Int(namesHeader.size))
      {
        names = bytes
      }
    }
    for index in 1..<count {
      var (nameOffset, section) = rawSection(index)
      let start = Int(nameOffset)
      if start < names.count {
        let end = names[start...].firstIndex(of: 0) ?? names.count
        section.name = String(decoding: names[start..<end], as: UTF8.self)
      }
      sections.append(section)
      if section.type == 7 {  // SHT_NOTE
        noteAreas.append(
          NoteArea(
            fileOffset: section.fileOffset, size: section.size, alignment: section.alignment))
      }
    }
  }

  /// The first section called `name`.
  public func section(named name: String) -> Section? {
    sections.first { $0.name == name }
  }

  /// The link-time address that file offset `offset` is loaded at, from the PT_LOAD covering it.
  public func virtualAddress(ofFileOffset offset: UInt64) -> UInt64? {
    for segment in segments
    where offset >= segment.fileOffset && offset - segment.fileOffset < max(segment.fileSize, 1) {
      return segment.virtualAddress &+ (offset - segment.fileOffset)
    }
    return nil
  }

  /// Does a PT_LOAD segment cover link-time address `address` in memory?
  public func isLoaded(virtualAddress address: UInt64) -> Bool {
    segments.contains {
      address >= $0.virtualAddress && address - $0.virtualAddress < $0.memorySize
    }
  }

  /// Why a file of `fileSize` bytes cannot hold what its headers promise (the section header table,
  /// every section with bytes, every loaded segment), or nil. A file cut short (a copy that stopped, a
  /// full disk) keeps a valid header, and readers that take what is there would find nothing in it.
  public func truncation(fileSize: UInt64) -> String? {
    func past(_ what: String, _ start: UInt64, _ size: UInt64) -> String? {
      let (end, overflow) = start.addingReportingOverflow(size)
      guard overflow || end > fileSize else { return nil }
      let ending = overflow ? "past 2^64" : "at byte \(end)"
      return "\(what) ends \(ending), but the file has \(fileSize) bytes"
    }
    if sectionTable.offset != 0,
      let reason = past("the section header table", sectionTable.offset, sectionTable.size)
    {
      return reason
    }
    for (index, section) in sections.enumerated() where section.hasFileBytes {
      if let reason = past("section \(index + 1)", section.fileOffset, section.size) {
        return reason
      }
    }
    for (index, segment) in segments.enumerated() {
      if let reason = past("loaded segment \(index)", segment.fileOffset, segment.fileSize) {
        return reason
      }
    }
    return nil
  }
}

/// Why an ELF file could not be read.
public struct ELFError: Error, Sendable, Equatable {
  public var reason: String
  public init(_ reason: String) { self.reason = reason }
}

/// Reads the fields of ELF headers and notes in the file's byte order and class. Out-of-range reads give
/// 0 instead of trapping, which only turns garbage into "not found"; callers check sizes first.
struct FieldReader {
  let is64Bit: Bool
  let bigEndian: Bool

  var fileHeaderSize: Int { is64Bit ? 64 : 52 }
  var programHeaderSize: Int { is64Bit ? 56 : 32 }
  var sectionHeaderSize: Int { is64Bit ? 64 : 40 }

  func u16(_ bytes: [UInt8], _ offset: Int) -> UInt16 {
    UInt16(truncatingIfNeeded: value(bytes, offset, width: 2))
  }
  func u32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
    UInt32(truncatingIfNeeded: value(bytes, offset, width: 4))
  }
  /// An address, offset or size: 8 bytes in ELF64, 4 in ELF32.
  func address(_ bytes: [UInt8], _ offset: Int) -> UInt64 {
    value(bytes, offset, width: is64Bit ? 8 : 4)
  }

  private func value(_ bytes: [UInt8], _ offset: Int, width: Int) -> UInt64 {
    guard offset >= 0, offset <= bytes.count - width else { return 0 }
    var result: UInt64 = 0
    for index in 0..<width {
      let byte = UInt64(bytes[bigEndian ? offset + index : offset + width - 1 - index])
      result = result << 8 | byte
    }
    return result
  }
}
