/// The layout of an ELF64 little-endian file: its loadable segments and its named sections. Only headers
/// are read here; section bytes are read by whoever needs them, through the same `read` function, so a
/// 1 GB binary costs a few kilobytes to open.
public struct ELFFile: Sendable {
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

    /// SHT_NOBITS (.bss): it occupies memory but no bytes of the file.
    public var hasFileBytes: Bool { type != 8 }
    /// SHF_COMPRESSED: the bytes start with an Elf64_Chdr and are zlib or zstd data.
    public var isCompressed: Bool { flags & 0x800 != 0 }
  }

  public private(set) var segments: [Segment] = []
  public private(set) var sections: [Section] = []

  /// Reads from `read(offset, count)`, which returns nil when those bytes do not exist. A file without
  /// section headers (some stripped or packed binaries) has segments only.
  public init(read: (UInt64, Int) -> [UInt8]?) throws(ELFError) {
    guard let header = read(0, 64), header.count == 64 else {
      throw ELFError("shorter than an ELF header")
    }
    guard header[0] == 0x7f, header[1] == 0x45, header[2] == 0x4c, header[3] == 0x46 else {
      throw ELFError("not an ELF file")
    }
    guard header[4] == 2, header[5] == 1 else { throw ELFError("not a little-endian ELF64 file") }
    let programHeaders = header.littleEndian(UInt64.self, at: 0x20)
    let sectionHeaders = header.littleEndian(UInt64.self, at: 0x28)
    let programEntrySize = Int(header.littleEndian(UInt16.self, at: 0x36))
    let programCount = Int(header.littleEndian(UInt16.self, at: 0x38))
    let sectionEntrySize = Int(header.littleEndian(UInt16.self, at: 0x3a))
    let sectionCount = Int(header.littleEndian(UInt16.self, at: 0x3c))
    let namesIndex = Int(header.littleEndian(UInt16.self, at: 0x3e))

    if programCount > 0 {
      guard programEntrySize >= 56, programCount < 4096,
        let table = read(programHeaders, programEntrySize * programCount),
        table.count == programEntrySize * programCount
      else { throw ELFError("program headers unreadable") }
      for index in 0..<programCount {
        let base = index * programEntrySize
        guard table.littleEndian(UInt32.self, at: base) == 1 else { continue }  // PT_LOAD
        let flags = table.littleEndian(UInt32.self, at: base + 4)
        segments.append(
          Segment(
            fileOffset: table.littleEndian(UInt64.self, at: base + 8),
            fileSize: table.littleEndian(UInt64.self, at: base + 32),
            virtualAddress: table.littleEndian(UInt64.self, at: base + 16),
            memorySize: table.littleEndian(UInt64.self, at: base + 40),
            isExecutable: flags & 1 != 0))
      }
    }

    guard sectionCount > 0, sectionCount < 65280, sectionEntrySize >= 64, namesIndex < sectionCount,
      let table = read(sectionHeaders, sectionEntrySize * sectionCount),
      table.count == sectionEntrySize * sectionCount
    else { return }
    func rawSection(_ index: Int) -> (name: UInt32, section: Section) {
      let base = index * sectionEntrySize
      return (
        table.littleEndian(UInt32.self, at: base),
        Section(
          name: "", type: table.littleEndian(UInt32.self, at: base + 4),
          flags: table.littleEndian(UInt64.self, at: base + 8),
          address: table.littleEndian(UInt64.self, at: base + 16),
          fileOffset: table.littleEndian(UInt64.self, at: base + 24),
          size: table.littleEndian(UInt64.self, at: base + 32))
      )
    }
    let namesHeader = rawSection(namesIndex).section
    guard namesHeader.size < 1 << 24,
      let names = read(namesHeader.fileOffset, Int(namesHeader.size))
    else { return }
    for index in 1..<sectionCount {
      var (nameOffset, section) = rawSection(index)
      let start = Int(nameOffset)
      guard start < names.count else { continue }
      let end = names[start...].firstIndex(of: 0) ?? names.count
      section.name = String(decoding: names[start..<end], as: UTF8.self)
      sections.append(section)
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
}

/// Why an ELF file could not be read.
public struct ELFError: Error, Sendable, Equatable {
  public var reason: String
  public init(_ reason: String) { self.reason = reason }
}

extension [UInt8] {
  /// A little-endian integer at `offset`; the caller has checked the bounds.
  @inlinable
  func littleEndian<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
    var value: T = 0
    for index in (0..<MemoryLayout<T>.size).reversed() {
      value = value << 8 | T(truncatingIfNeeded: self[offset + index])
    }
    return value
  }
}
