/// The call frame information of one ELF file. `.eh_frame` is searched through the binary search table
/// of `.eh_frame_hdr` when the file has a usable one, reading only the FDEs and CIEs in use from the file;
/// otherwise (and for `.debug_frame`) every FDE is indexed by the range it covers. Built once per file and
/// cached: memory is the search table, or the section and its index, plus the CIEs parsed so far.
final class CallFrameInformation {
  enum Source {
    case ehFrame
    case debugFrame
  }

  struct Entry {
    var begin: UInt64
    var end: UInt64
    var source: Source
    /// Offset of the FDE's length field within its section.
    var offset: Int
  }

  struct CommonInformation {
    var codeAlignment: UInt64
    var dataAlignment: Int64
    var returnAddressRegister: Int
    var pointerEncoding: UInt8
    var hasAugmentationData: Bool
    var isSignalFrame: Bool
    var initialInstructions: [UInt8]
  }

  /// Bytes of one entry (or of a whole section) and where they start in their section.
  private struct Buffer {
    var bytes: [UInt8]
    var sectionOffset: Int
  }

  /// The `.eh_frame_hdr` search table: sorted (initial location, FDE address) pairs, both sdata4
  /// relative to the header's address (the encoding every linker writes).
  private struct SearchTable {
    var bytes: [UInt8]
    var tableOffset: Int
    var count: Int
    var headerAddress: UInt64

    func pair(_ index: Int) -> (location: UInt64, fde: UInt64) {
      var reader = ByteReader(bytes, offset: tableOffset + index * 8)
      let location = Int32(bitPattern: (try? reader.u32()) ?? 0)
      let fde = Int32(bitPattern: (try? reader.u32()) ?? 0)
      return (
        headerAddress &+ UInt64(bitPattern: Int64(location)),
        headerAddress &+ UInt64(bitPattern: Int64(fde))
      )
    }
  }

  let sections: ELFSections
  private let read: (UInt64, Int) -> [UInt8]?
  private var searchTable: SearchTable?
  /// Whole sections kept in memory: `.debug_frame`, and `.eh_frame` when there is no search table.
  private var ehFrameBytes: [UInt8]?
  private var debugFrameBytes: [UInt8]?
  /// Sorted by `begin`, for the sections kept in memory.
  private(set) var entries: [Entry] = []
  private var commonCache: [Int: CommonInformation] = [:]
  private var commonCacheDebug: [Int: CommonInformation] = [:]
  /// Entries that could not be indexed; the code they cover becomes "no CFI", never a crash.
  private(set) var skippedEntries = 0

  static let maximumEntryBytes = 1 << 20

  init(sections: ELFSections, read: @escaping (UInt64, Int) -> [UInt8]?) {
    self.sections = sections
    self.read = read
    if let header = sections.ehFrameHeader, let frame = sections.ehFrame,
      let table = Self.searchTable(header, frame: frame, read: read)
    {
      searchTable = table
    } else if let frame = sections.ehFrame, let bytes = read(frame.fileOffset, frame.size) {
      ehFrameBytes = bytes
      index(bytes, address: frame.address, source: .ehFrame)
    }
    if let frame = sections.debugFrame, let bytes = read(frame.fileOffset, frame.size) {
      debugFrameBytes = bytes
      index(bytes, address: 0, source: .debugFrame)
    }
    entries.sort { $0.begin < $1.begin }
  }

  var isEmpty: Bool { entries.isEmpty && (searchTable?.count ?? 0) == 0 }

  /// Bytes held in memory for this file.
  var residentBytes: Int {
    (searchTable?.bytes.count ?? 0) + (ehFrameBytes?.count ?? 0) + (debugFrameBytes?.count ?? 0)
      + entries.count * MemoryLayout<Entry>.stride
  }

  private static func searchTable(
    _ header: ELFSections.Section, frame: ELFSections.Section, read: (UInt64, Int) -> [UInt8]?
  ) -> SearchTable? {
    guard let bytes = read(header.fileOffset, header.size) else { return nil }
    var reader = ByteReader(bytes)
    // The header's address comes from the file: pc-relative fields wrap around as the linker's do, where
    // `+` trapped (found by the CFI fuzz target: Fuzz/Crashers/cfi/).
    guard let version = try? reader.u8(), version == 1,
      let framePointerEncoding = try? reader.u8(), let countEncoding = try? reader.u8(),
      let tableEncoding = try? reader.u8(), tableEncoding == 0x3b,
      (try? PointerEncoding.read(
        &reader, encoding: framePointerEncoding, fieldAddress: header.address &+ 4)) != nil,
      let count = try? PointerEncoding.read(
        &reader, encoding: countEncoding, fieldAddress: header.address &+ UInt64(reader.offset)),
      count > 0, count <= UInt64((bytes.count - reader.offset) / 8)
    else { return nil }
    return SearchTable(
      bytes: bytes, tableOffset: reader.offset, count: Int(count), headerAddress: header.address)
  }

  private func index(_ bytes: [UInt8], address: UInt64, source: Source) {
    var offset = 0
    while offset + 4 <= bytes.count {
      do {
        var reader = ByteReader(bytes, offset: offset)
        let (bodyStart, end) = try Self.readLength(&reader)
        if bodyStart == end, source == .ehFrame { break }  // the zero terminator
        let idField = reader.offset
        let id = try Self.readCIEPointer(&reader, is64: bodyStart - offset == 12)
        if Self.isCIE(id: id, source: source) {
          offset = end
          continue
        }
        let cieOffset =
          source == .ehFrame ? idField - Int(truncatingIfNeeded: id) : Int(truncatingIfNeeded: id)
        let common = try commonInformation(at: cieOffset, source: source)
        reader.limit = end
        let begin = try Self.readAddress(
          &reader, encoding: common.pointerEncoding, fieldAddress: address &+ UInt64(reader.offset),
          source: source)
        let length = try Self.readRange(&reader, encoding: common.pointerEncoding, source: source)
        if length > 0, begin &+ length > begin {
          entries.append(Entry(begin: begin, end: begin + length, source: source, offset: offset))
        }
        offset = end
      } catch {
        // A broken length makes the rest of the section unparseable; a broken FDE body only that FDE.
        skippedEntries += 1
        var reader = ByteReader(bytes, offset: offset)
        guard let (_, end) = try? Self.readLength(&reader), end > offset else { break }
        offset = end
      }
    }
  }

  /// Returns the start of the body (after the length) and the end of the entry.
  static func readLength(_ reader: inout ByteReader) throws(CFIError) -> (Int, Int) {
    var length = UInt64(try reader.u32())
    if length == 0xffff_ffff { length = try reader.u64() }
    guard length < UInt64(maximumEntryBytes) else {
      throw CFIError("entry length \(length) is impossible")
    }
    let body = reader.offset
    guard body + Int(length) <= reader.limit else {
      throw CFIError("entry at \(body) is longer than its section")
    }
    return (body, body + Int(length))
  }

  private static func readCIEPointer(_ reader: inout ByteReader, is64: Bool) throws(CFIError)
    -> UInt64
  {
    is64 ? try reader.u64() : UInt64(try reader.u32())
  }

  private static func isCIE(id: UInt64, source: Source) -> Bool {
    source == .ehFrame ? id == 0 : (id == 0xffff_ffff || id == .max)
  }

  private static func readAddress(
    _ reader: inout ByteReader, encoding: UInt8, fieldAddress: UInt64, source: Source
  ) throws(CFIError) -> UInt64 {
    switch source {
    case .debugFrame: return try reader.u64()
    case .ehFrame:
      return try PointerEncoding.read(&reader, encoding: encoding, fieldAddress: fieldAddress)
    }
  }

  private static func readRange(_ reader: inout ByteReader, encoding: UInt8, source: Source)
    throws(CFIError) -> UInt64
  {
    source == .debugFrame
      ? try reader.u64() : try PointerEncoding.readRange(&reader, encoding: encoding)
  }

  /// The entry at `offset` of its section: a view into a resident section, or just its bytes read from the
  /// file.
  private func buffer(at offset: Int, source: Source) throws(CFIError) -> Buffer {
    let resident = source == .ehFrame ? ehFrameBytes : debugFrameBytes
    if let resident { return Buffer(bytes: resident, sectionOffset: 0) }
    guard source == .ehFrame, let section = sections.ehFrame, offset >= 0,
      offset + 4 <= section.size
    else { throw CFIError("entry offset \(offset) is outside the section") }
    let start = section.fileOffset + UInt64(offset)
    guard let head = read(start, min(12, section.size - offset)) else {
      throw CFIError("cannot read the entry at \(offset)")
    }
    var reader = ByteReader(head)
    var length = UInt64(try reader.u32())
    if length == 0xffff_ffff { length = try reader.u64() }
    let total = reader.offset + Int(min(length, UInt64(Self.maximumEntryBytes)))
    guard length < UInt64(Self.maximumEntryBytes), offset + total <= section.size,
      let bytes = read(start, total)
    else { throw CFIError("entry at \(offset) runs past the section") }
    return Buffer(bytes: bytes, sectionOffset: offset)
  }

  private func sectionAddress(_ source: Source) -> UInt64 {
    source == .ehFrame ? (sections.ehFrame?.address ?? 0) : 0
  }

  func commonInformation(at offset: Int, source: Source) throws(CFIError) -> CommonInformation {
    if let cached = source == .ehFrame ? commonCache[offset] : commonCacheDebug[offset] {
      return cached
    }
    let buffer = try buffer(at: offset, source: source)
    let local = offset - buffer.sectionOffset
    guard local >= 0, local < buffer.bytes.count else {
      throw CFIError("FDE points to a CIE outside the section")
    }
    var reader = ByteReader(buffer.bytes, offset: local)
    let (bodyStart, end) = try Self.readLength(&reader)
    reader.limit = end
    let id = try Self.readCIEPointer(&reader, is64: bodyStart - local == 12)
    guard Self.isCIE(id: id, source: source) else { throw CFIError("FDE points to another FDE") }
    let version = try reader.u8()
    guard [1, 3, 4].contains(version) else { throw CFIError("CIE version \(version)") }
    let augmentation = try reader.cString()
    if version == 4 {
      let addressSize = try reader.u8()
      _ = try reader.u8()
      guard addressSize == 8 else { throw CFIError("address size \(addressSize)") }
    }
    if augmentation.starts(with: Array("eh".utf8)) { try reader.skip(8) }
    let codeAlignment = try reader.uleb128()
    let dataAlignment = try reader.sleb128()
    let returnRegister = version == 1 ? UInt64(try reader.u8()) : try reader.uleb128()
    var encoding: UInt8 = 0
    var signal = false
    let hasData = augmentation.first == UInt8(ascii: "z")
    if hasData {
      guard let dataLength = try? reader.lengthULEB128() else {
        throw CFIError("CIE augmentation data overruns the CIE")
      }
      let dataEnd = reader.offset + dataLength
      for letter in augmentation.dropFirst() {
        switch letter {
        case UInt8(ascii: "R"): encoding = try reader.u8()
        case UInt8(ascii: "L"): _ = try reader.u8()
        case UInt8(ascii: "P"):
          let personalityEncoding = try reader.u8()
          _ = try PointerEncoding.read(
            &reader, encoding: personalityEncoding & 0x7f, fieldAddress: 0, dataBase: 0)
        case UInt8(ascii: "S"): signal = true
        default: break  // 'B' (AArch64) and unknown letters: the length lets us skip their data
        }
      }
      reader.offset = dataEnd
    } else if augmentation.contains(UInt8(ascii: "S")) {
      signal = true
    }
    guard returnRegister < 64 else { throw CFIError("return address register \(returnRegister)") }
    let common = CommonInformation(
      codeAlignment: codeAlignment, dataAlignment: dataAlignment,
      returnAddressRegister: Int(returnRegister), pointerEncoding: encoding,
      hasAugmentationData: hasData, isSignalFrame: signal,
      initialInstructions: Array(buffer.bytes[reader.offset..<end]))
    if source == .ehFrame {
      commonCache[offset] = common
    } else {
      commonCacheDebug[offset] = common
    }
    return common
  }

  /// The FDE covering link-time address `address`: from the search table, else from the index.
  func entry(covering address: UInt64) throws(CFIError) -> Entry? {
    if let table = searchTable, let frame = sections.ehFrame {
      var low = 0
      var high = table.count
      while low < high {
        let middle = (low + high) / 2
        if table.pair(middle).location <= address { low = middle + 1 } else { high = middle }
      }
      if low > 0 {
        let fdeAddress = table.pair(low - 1).fde
        guard fdeAddress >= frame.address, fdeAddress - frame.address < UInt64(frame.size) else {
          throw CFIError(".eh_frame_hdr points outside .eh_frame")
        }
        let offset = Int(fdeAddress - frame.address)
        let (begin, end) = try range(ofEntryAt: offset)
        if address >= begin && address < end {
          return Entry(begin: begin, end: end, source: .ehFrame, offset: offset)
        }
      }
    }
    var low = 0
    var high = entries.count
    while low < high {
      let middle = (low + high) / 2
      if entries[middle].begin <= address { low = middle + 1 } else { high = middle }
    }
    // Nested or overlapping ranges: look back a few entries that start earlier but may still cover it.
    var index = low - 1
    var steps = 0
    while index >= 0 && steps < 8 {
      if entries[index].end > address { return entries[index] }
      index -= 1
      steps += 1
    }
    return nil
  }

  private func range(ofEntryAt offset: Int) throws(CFIError) -> (UInt64, UInt64) {
    var (cursor, common, bufferOffset) = try openEntry(at: offset, source: .ehFrame)
    let base = sectionAddress(.ehFrame)
    let begin = try Self.readAddress(
      &cursor, encoding: common.pointerEncoding,
      fieldAddress: base &+ UInt64(cursor.offset + bufferOffset), source: .ehFrame)
    let length = try Self.readRange(&cursor, encoding: common.pointerEncoding, source: .ehFrame)
    return (begin, begin &+ length)
  }

  /// A reader positioned at the FDE's pc_begin field, its CIE, and the section offset of the reader's
  /// buffer (for pc-relative pointers).
  private func openEntry(at offset: Int, source: Source) throws(CFIError) -> (
    ByteReader, CommonInformation, Int
  ) {
    let buffer = try buffer(at: offset, source: source)
    let local = offset - buffer.sectionOffset
    var reader = ByteReader(buffer.bytes, offset: local)
    let (bodyStart, end) = try Self.readLength(&reader)
    reader.limit = end
    let idField = reader.offset + buffer.sectionOffset
    let id = try Self.readCIEPointer(&reader, is64: bodyStart - local == 12)
    guard !Self.isCIE(id: id, source: source) else {
      throw CFIError("expected an FDE, found a CIE")
    }
    let cieOffset =
      source == .ehFrame ? idField - Int(truncatingIfNeeded: id) : Int(truncatingIfNeeded: id)
    let common = try commonInformation(at: cieOffset, source: source)
    return (reader, common, buffer.sectionOffset)
  }

  /// The unwind rule in force at `address`, computed by running the CIE's and FDE's instructions.
  func rule(at address: UInt64) throws(CFIError) -> FrameRule? {
    guard let entry = try entry(covering: address) else { return nil }
    var (reader, common, bufferOffset) = try openEntry(at: entry.offset, source: entry.source)
    let base = sectionAddress(entry.source)
    _ = try Self.readAddress(
      &reader, encoding: common.pointerEncoding,
      fieldAddress: base &+ UInt64(reader.offset + bufferOffset), source: entry.source)
    _ = try Self.readRange(&reader, encoding: common.pointerEncoding, source: entry.source)
    if entry.source == .ehFrame && common.hasAugmentationData {
      try reader.skip(try reader.lengthULEB128())
    }
    var machine = CFAMachine(common: common, start: entry.begin)
    try machine.run(ByteReader(common.initialInstructions), until: address, isInitial: true)
    try machine.run(reader, until: address)
    return machine.rule
  }
}
