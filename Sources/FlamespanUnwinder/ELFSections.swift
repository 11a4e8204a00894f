import FlamespanELF

/// The parts of an ELF64 file an unwinder needs: its loadable segments (to turn a file offset into a
/// link-time address) and its CFI sections with their link-time addresses.
struct ELFSections {
  /// A section's place in the file; its bytes are read by whoever needs them (`CallFrameInformation`).
  struct Section {
    var address: UInt64
    var fileOffset: UInt64
    var size: Int
  }

  let file: ELFFile
  var ehFrame: Section?
  var ehFrameHeader: Section?
  var debugFrame: Section?

  /// CFI sections larger than this are refused rather than read: no real binary comes near it.
  static let maximumSectionBytes: UInt64 = 256 << 20

  /// Reads from `read(offset, count)`, which returns nil when those bytes do not exist.
  init(read: (UInt64, Int) -> [UInt8]?) throws(CFIError) {
    do {
      file = try ELFFile(read: read)
    } catch {
      throw CFIError(error.reason)
    }
    for section in file.sections where section.hasFileBytes {
      guard [".eh_frame", ".eh_frame_hdr", ".debug_frame"].contains(section.name) else { continue }
      guard section.size <= Self.maximumSectionBytes else {
        throw CFIError("\(section.name) is \(section.size) bytes, more than any real CFI")
      }
      // Offsets within the section are added to its file offset: one whose end is past any file would
      // overflow there (found by the CFI fuzz target: Fuzz/Crashers/cfi/).
      guard section.fileOffset <= UInt64(Int64.max) - section.size else {
        throw CFIError("\(section.name) lies at file offset \(section.fileOffset), past any file")
      }
      // A compressed .debug_frame (SHF_COMPRESSED) holds a header and zlib data, not CFI.
      guard !section.isCompressed else { continue }
      let loaded = Section(
        address: section.address, fileOffset: section.fileOffset, size: Int(section.size))
      switch section.name {
      case ".eh_frame": ehFrame = loaded
      case ".eh_frame_hdr": ehFrameHeader = loaded
      default: debugFrame = loaded
      }
    }
  }

  /// The link-time address that file offset `offset` is loaded at, from the PT_LOAD covering it.
  func virtualAddress(ofFileOffset offset: UInt64) -> UInt64? {
    file.virtualAddress(ofFileOffset: offset)
  }
}
