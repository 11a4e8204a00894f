extension ELFFile {
  /// Note areas larger than this are not notes worth reading; refusing them bounds memory use.
  static let maximumNoteBytes: UInt64 = 1 << 20

  /// The GNU build id (NT_GNU_BUILD_ID in a "GNU" note) from the file's note areas, segments first;
  /// nil when there is none or the notes are malformed. `read` is the file's, as given to `init`.
  public func gnuBuildID(read: (UInt64, Int) -> [UInt8]?) -> [UInt8]? {
    for area in noteAreas where area.size > 0 && area.size <= Self.maximumNoteBytes {
      guard let notes = read(area.fileOffset, Int(area.size)), notes.count == Int(area.size) else {
        continue
      }
      if let id = Self.gnuBuildID(inNotes: notes, alignment: area.alignment, bigEndian: isBigEndian)
      {
        return id
      }
    }
    return nil
  }

  /// Walks a note area: `namesz, descsz, type`, then name and descriptor, each padded to the area's
  /// alignment. Stops at the first note that does not fit.
  public static func gnuBuildID(inNotes notes: [UInt8], alignment: UInt64, bigEndian: Bool)
    -> [UInt8]?
  {
    let fields = FieldReader(is64Bit: true, bigEndian: bigEndian)
    // 8-byte aligned notes (such as .note.gnu.property) pad to 8; everything else to 4.
    let padding = alignment == 8 ? 8 : 4
    func padded(_ value: Int) -> Int? {
      let (sum, overflow) = value.addingReportingOverflow(padding - 1)
      return overflow ? nil : sum & ~(padding - 1)
    }
    var cursor = 0
    while cursor + 12 <= notes.count {
      let nameSize = Int(fields.u32(notes, cursor))
      let descriptorSize = Int(fields.u32(notes, cursor + 4))
      let type = fields.u32(notes, cursor + 8)
      let nameStart = cursor + 12
      guard nameSize <= notes.count, descriptorSize <= notes.count,
        let descriptorStart = padded(nameStart + nameSize),
        let next = padded(descriptorStart + descriptorSize),
        descriptorStart + descriptorSize <= notes.count
      else { return nil }
      if type == 3, nameSize == 4,  // NT_GNU_BUILD_ID
        notes[nameStart..<nameStart + 4].elementsEqual([0x47, 0x4e, 0x55, 0x00]),  // "GNU\0"
        descriptorSize > 0
      {
        return Array(notes[descriptorStart..<descriptorStart + descriptorSize])
      }
      guard next > cursor else { return nil }
      cursor = next
    }
    return nil
  }
}
