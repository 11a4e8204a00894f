/// The call frame information of one ELF file: every FDE of `.eh_frame` and `.debug_frame` indexed by the
/// address range it covers, with CIEs parsed on first use. Built once per file and cached.
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
    var initialInstructions: ArraySlice<UInt8>
  }

  let sections: ELFSections
  /// Sorted by `begin`; overlapping ranges (rare, broken links) resolve to the last one starting at or
  /// before the address.
  private(set) var entries: [Entry] = []
  private var commonCache: [Int: CommonInformation] = [:]
  private var commonCacheDebug: [Int: CommonInformation] = [:]
  /// Entries that could not be indexed; the code they cover becomes "no CFI", never a crash.
  private(set) var skippedEntries = 0

  init(sections: ELFSections) {
    self.sections = sections
    if let frame = sections.ehFrame { index(frame, source: .ehFrame) }
    if let frame = sections.debugFrame { index(frame, source: .debugFrame) }
    entries.sort { $0.begin < $1.begin }
  }

  var isEmpty: Bool { entries.isEmpty }

  private func index(_ section: ELFSections.Section, source: Source) {
    var offset = 0
    let bytes = section.bytes
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
          &reader, encoding: common.pointerEncoding, section: section, source: source)
        let length = try Self.readRange(&reader, encoding: common.pointerEncoding, source: source)
        if length > 0, begin &+ length > begin {
          entries.append(Entry(begin: begin, end: begin + length, source: source, offset: offset))
        }
        offset = end
      } catch {
        // A broken length makes the rest of the section unparseable; a broken FDE body only that FDE.
        skippedEntries += 1
        guard let next = Self.nextOffset(bytes, offset) else { break }
        offset = next
      }
    }
  }

  private static func nextOffset(_ bytes: [UInt8], _ offset: Int) -> Int? {
    var reader = ByteReader(bytes, offset: offset)
    guard let (_, end) = try? readLength(&reader), end > offset, end <= bytes.count else {
      return nil
    }
    return end
  }

  /// Returns the start of the body (after the length) and the end of the entry.
  static func readLength(_ reader: inout ByteReader) throws(CFIError) -> (Int, Int) {
    var length = UInt64(try reader.u32())
    if length == 0xffff_ffff { length = try reader.u64() }
    guard length < 1 << 31 else { throw CFIError("entry length \(length) is impossible") }
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
    _ reader: inout ByteReader, encoding: UInt8, section: ELFSections.Section, source: Source
  ) throws(CFIError) -> UInt64 {
    switch source {
    case .debugFrame: return try reader.u64()
    case .ehFrame:
      let fieldAddress = section.address &+ UInt64(reader.offset)
      return try PointerEncoding.read(&reader, encoding: encoding, fieldAddress: fieldAddress)
    }
  }

  private static func readRange(_ reader: inout ByteReader, encoding: UInt8, source: Source)
    throws(CFIError) -> UInt64
  {
    source == .debugFrame
      ? try reader.u64() : try PointerEncoding.readRange(&reader, encoding: encoding)
  }

  private func section(_ source: Source) -> ELFSections.Section? {
    source == .ehFrame ? sections.ehFrame : sections.debugFrame
  }

  func commonInformation(at offset: Int, source: Source) throws(CFIError) -> CommonInformation {
    if let cached = source == .ehFrame ? commonCache[offset] : commonCacheDebug[offset] {
      return cached
    }
    guard let section = section(source), offset >= 0, offset < section.bytes.count else {
      throw CFIError("FDE points to a CIE outside the section")
    }
    var reader = ByteReader(section.bytes, offset: offset)
    let (bodyStart, end) = try Self.readLength(&reader)
    reader.limit = end
    let id = try Self.readCIEPointer(&reader, is64: bodyStart - offset == 12)
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
      let dataLength = Int(try reader.uleb128())
      let dataEnd = reader.offset + dataLength
      guard dataEnd <= end else { throw CFIError("CIE augmentation data overruns the CIE") }
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
      initialInstructions: section.bytes[reader.offset..<end])
    if source == .ehFrame {
      commonCache[offset] = common
    } else {
      commonCacheDebug[offset] = common
    }
    return common
  }

  /// The FDE covering link-time address `address`.
  func entry(covering address: UInt64) -> Entry? {
    var low = 0
    var high = entries.count
    while low < high {
      let middle = (low + high) / 2
      if entries[middle].begin <= address { low = middle + 1 } else { high = middle }
    }
    var index = low - 1
    // Nested or overlapping ranges: walk back over entries that start earlier but may still cover it.
    var steps = 0
    while index >= 0 && steps < 8 {
      if entries[index].end > address { return entries[index] }
      index -= 1
      steps += 1
    }
    return nil
  }

  /// The unwind rule in force at `address`, computed by running the CIE's and FDE's instructions.
  func rule(at address: UInt64) throws(CFIError) -> FrameRule? {
    guard let entry = entry(covering: address), let section = section(entry.source) else {
      return nil
    }
    var reader = ByteReader(section.bytes, offset: entry.offset)
    let (bodyStart, end) = try Self.readLength(&reader)
    reader.limit = end
    let idField = reader.offset
    let id = try Self.readCIEPointer(&reader, is64: bodyStart - entry.offset == 12)
    let cieOffset =
      entry.source == .ehFrame ? idField - Int(truncatingIfNeeded: id) : Int(truncatingIfNeeded: id)
    let common = try commonInformation(at: cieOffset, source: entry.source)
    _ = try Self.readAddress(
      &reader, encoding: common.pointerEncoding, section: section, source: entry.source)
    _ = try Self.readRange(&reader, encoding: common.pointerEncoding, source: entry.source)
    if entry.source == .ehFrame && common.hasAugmentationData {
      let length = Int(try reader.uleb128())
      try reader.skip(length)
    }
    var machine = CFAMachine(common: common, start: entry.begin)
    try machine.run(
      ByteReader(Array(common.initialInstructions)), until: address, isInitial: true)
    try machine.run(ByteReader(section.bytes, offset: reader.offset, limit: end), until: address)
    return machine.rule
  }
}
