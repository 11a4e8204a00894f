import FlamespanModel

/// Reads the GNU build id of an ELF file from its headers alone, without loading the file.
///
/// Any malformed, truncated or non-ELF input yields nil: every offset and size read from the file is
/// checked against the file's length before use.
public enum ELFBuildID {
  public static func read(path: String) -> BuildID? {
    guard let file = RandomAccessFile(path: path) else { return nil }
    return read(file: file)
  }

  /// Sections and segments larger than this are not notes worth reading; refusing them bounds memory use.
  private static let maximumNoteBytes = 1 << 20
  private static let maximumHeaderCount = 4096
  private static let noteTypeGNUBuildID: UInt32 = 3
  private static let programHeaderTypeNote: UInt32 = 4
  private static let sectionTypeNote: UInt32 = 7

  static func read(file: RandomAccessFile) -> BuildID? {
    guard let identity = file.read(offset: 0, count: 16),
      identity[0] == 0x7f, identity[1] == UInt8(ascii: "E"), identity[2] == UInt8(ascii: "L"),
      identity[3] == UInt8(ascii: "F")
    else { return nil }
    let is64Bit: Bool
    switch identity[4] {
    case 1: is64Bit = false
    case 2: is64Bit = true
    default: return nil
    }
    let bigEndian: Bool
    switch identity[5] {
    case 1: bigEndian = false
    case 2: bigEndian = true
    default: return nil
    }
    let headerSize = is64Bit ? 64 : 52
    guard let header = file.read(offset: 0, count: headerSize) else { return nil }
    let reader = FieldReader(bigEndian: bigEndian)

    // Segments first: they survive `strip --strip-all` of section headers and are what loaders see.
    let programHeaderOffset = is64Bit ? reader.u64(header, 32) : UInt64(reader.u32(header, 28))
    let programHeaderSize = Int(reader.u16(header, is64Bit ? 54 : 42))
    let programHeaderCount = Int(reader.u16(header, is64Bit ? 56 : 44))
    if programHeaderOffset != 0, programHeaderCount > 0, programHeaderCount <= maximumHeaderCount,
      programHeaderSize >= (is64Bit ? 56 : 32),
      let table = file.read(
        offset: programHeaderOffset, count: programHeaderSize * programHeaderCount)
    {
      for index in 0..<programHeaderCount {
        let base = index * programHeaderSize
        guard reader.u32(table, base) == programHeaderTypeNote else { continue }
        let offset = is64Bit ? reader.u64(table, base + 8) : UInt64(reader.u32(table, base + 4))
        let size = is64Bit ? reader.u64(table, base + 32) : UInt64(reader.u32(table, base + 16))
        let alignment =
          is64Bit ? reader.u64(table, base + 48) : UInt64(reader.u32(table, base + 28))
        if let id = buildID(
          in: file, offset: offset, size: size, alignment: alignment, reader: reader)
        {
          return id
        }
      }
    }

    let sectionHeaderOffset = is64Bit ? reader.u64(header, 40) : UInt64(reader.u32(header, 32))
    let sectionHeaderSize = Int(reader.u16(header, is64Bit ? 58 : 46))
    let sectionHeaderCount = Int(reader.u16(header, is64Bit ? 60 : 48))
    if sectionHeaderOffset != 0, sectionHeaderCount > 0, sectionHeaderCount <= maximumHeaderCount,
      sectionHeaderSize >= (is64Bit ? 64 : 40),
      let table = file.read(
        offset: sectionHeaderOffset, count: sectionHeaderSize * sectionHeaderCount)
    {
      for index in 0..<sectionHeaderCount {
        let base = index * sectionHeaderSize
        guard reader.u32(table, base + 4) == sectionTypeNote else { continue }
        let offset = is64Bit ? reader.u64(table, base + 24) : UInt64(reader.u32(table, base + 16))
        let size = is64Bit ? reader.u64(table, base + 32) : UInt64(reader.u32(table, base + 20))
        let alignment =
          is64Bit ? reader.u64(table, base + 48) : UInt64(reader.u32(table, base + 32))
        if let id = buildID(
          in: file, offset: offset, size: size, alignment: alignment, reader: reader)
        {
          return id
        }
      }
    }
    return nil
  }

  private static func buildID(
    in file: RandomAccessFile, offset: UInt64, size: UInt64, alignment: UInt64, reader: FieldReader
  ) -> BuildID? {
    guard size > 0, size <= UInt64(maximumNoteBytes),
      let notes = file.read(offset: offset, count: Int(size))
    else { return nil }
    return buildID(inNotes: notes, alignment: alignment, reader: reader)
  }

  /// Walks a note area: `namesz, descsz, type`, then name and descriptor, each padded to the area's alignment.
  static func buildID(inNotes notes: [UInt8], alignment: UInt64, reader: FieldReader) -> BuildID? {
    // 8-byte aligned notes (such as .note.gnu.property) pad to 8; everything else to 4.
    let padding = alignment == 8 ? 8 : 4
    func padded(_ value: Int) -> Int? {
      let (sum, overflow) = value.addingReportingOverflow(padding - 1)
      return overflow ? nil : sum & ~(padding - 1)
    }
    var cursor = 0
    while cursor + 12 <= notes.count {
      let nameSize = Int(reader.u32(notes, cursor))
      let descriptorSize = Int(reader.u32(notes, cursor + 4))
      let type = reader.u32(notes, cursor + 8)
      let nameStart = cursor + 12
      guard nameSize <= notes.count, descriptorSize <= notes.count,
        let descriptorStart = padded(nameStart + nameSize),
        let next = padded(descriptorStart + descriptorSize),
        descriptorStart + descriptorSize <= notes.count
      else { return nil }
      if type == noteTypeGNUBuildID, nameSize == 4,
        notes[nameStart..<nameStart + 4].elementsEqual([0x47, 0x4e, 0x55, 0x00]),  // "GNU\0"
        descriptorSize > 0
      {
        return BuildID(bytes: Array(notes[descriptorStart..<descriptorStart + descriptorSize]))
      }
      guard next > cursor else { return nil }
      cursor = next
    }
    return nil
  }
}

/// Reads fixed-width integers from a byte array in the file's byte order. Callers check bounds first;
/// out-of-range reads return 0 instead of trapping, which only turns garbage into "not found".
struct FieldReader {
  let bigEndian: Bool

  func u16(_ bytes: [UInt8], _ offset: Int) -> UInt16 {
    UInt16(truncatingIfNeeded: value(bytes, offset, width: 2))
  }
  func u32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
    UInt32(truncatingIfNeeded: value(bytes, offset, width: 4))
  }
  func u64(_ bytes: [UInt8], _ offset: Int) -> UInt64 { value(bytes, offset, width: 8) }

  private func value(_ bytes: [UInt8], _ offset: Int, width: Int) -> UInt64 {
    guard offset >= 0, offset + width <= bytes.count else { return 0 }
    var result: UInt64 = 0
    for index in 0..<width {
      let byte = UInt64(bytes[bigEndian ? offset + index : offset + width - 1 - index])
      result = result << 8 | byte
    }
    return result
  }
}
