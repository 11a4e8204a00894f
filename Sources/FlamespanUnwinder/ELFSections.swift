import Glibc

/// The parts of an ELF64 file an unwinder needs: its loadable segments (to turn a file offset into a
/// link-time address) and its CFI sections with their link-time addresses.
struct ELFSections {
  struct Segment {
    var fileOffset: UInt64
    var fileSize: UInt64
    var virtualAddress: UInt64
  }

  /// A section's place in the file; its bytes are read by whoever needs them (`CallFrameInformation`).
  struct Section {
    var address: UInt64
    var fileOffset: UInt64
    var size: Int
  }

  var segments: [Segment] = []
  var ehFrame: Section?
  var ehFrameHeader: Section?
  var debugFrame: Section?

  /// CFI sections larger than this are refused rather than read: no real binary comes near it.
  static let maximumSectionBytes: UInt64 = 256 << 20

  /// Reads from `read(offset, count)`, which returns nil when those bytes do not exist.
  init(read: (UInt64, Int) -> [UInt8]?) throws(CFIError) {
    guard let header = read(0, 64), header.count == 64 else {
      throw CFIError("shorter than an ELF header")
    }
    guard header[0] == 0x7f, header[1] == 0x45, header[2] == 0x4c, header[3] == 0x46 else {
      throw CFIError("not an ELF file")
    }
    guard header[4] == 2, header[5] == 1 else { throw CFIError("not a little-endian ELF64 file") }
    var reader = ByteReader(header, offset: 0x20)
    let programHeaders = try reader.u64()
    let sectionHeaders = try reader.u64()
    reader.offset = 0x36
    let programEntrySize = Int(try reader.u16())
    let programCount = Int(try reader.u16())
    let sectionEntrySize = Int(try reader.u16())
    let sectionCount = Int(try reader.u16())
    let namesIndex = Int(try reader.u16())

    if programCount > 0 {
      guard programEntrySize >= 56, programCount < 4096,
        let table = read(programHeaders, programEntrySize * programCount)
      else { throw CFIError("program headers unreadable") }
      for index in 0..<programCount {
        var entry = ByteReader(table, offset: index * programEntrySize)
        let type = try entry.u32()
        guard type == 1 else { continue }  // PT_LOAD
        try entry.skip(4)
        let offset = try entry.u64()
        let address = try entry.u64()
        try entry.skip(8)
        let fileSize = try entry.u64()
        segments.append(Segment(fileOffset: offset, fileSize: fileSize, virtualAddress: address))
      }
    }

    guard sectionCount > 0, sectionCount < 65280, sectionEntrySize >= 64, namesIndex < sectionCount,
      let table = read(sectionHeaders, sectionEntrySize * sectionCount)
    else { return }
    struct RawSection {
      var name: UInt32
      var type: UInt32
      var address: UInt64
      var offset: UInt64
      var size: UInt64
    }
    var raw: [RawSection] = []
    for index in 0..<sectionCount {
      var entry = ByteReader(table, offset: index * sectionEntrySize)
      let name = try entry.u32()
      let type = try entry.u32()
      try entry.skip(8)
      let address = try entry.u64()
      let offset = try entry.u64()
      let size = try entry.u64()
      raw.append(RawSection(name: name, type: type, address: address, offset: offset, size: size))
    }
    let namesHeader = raw[namesIndex]
    guard namesHeader.size < 1 << 24, let names = read(namesHeader.offset, Int(namesHeader.size))
    else { return }
    func name(_ section: RawSection) -> String? {
      let start = Int(section.name)
      guard start < names.count else { return nil }
      let end = names[start...].firstIndex(of: 0) ?? names.count
      return String(decoding: names[start..<end], as: UTF8.self)
    }
    for section in raw where section.type != 8 {  // SHT_NOBITS has no bytes in the file
      guard let sectionName = name(section),
        [".eh_frame", ".eh_frame_hdr", ".debug_frame"].contains(sectionName)
      else { continue }
      guard section.size <= Self.maximumSectionBytes else {
        throw CFIError("\(sectionName) is \(section.size) bytes, more than any real CFI")
      }
      let loaded = Section(
        address: section.address, fileOffset: section.offset, size: Int(section.size))
      switch sectionName {
      case ".eh_frame": ehFrame = loaded
      case ".eh_frame_hdr": ehFrameHeader = loaded
      default: debugFrame = loaded
      }
    }
  }

  /// The link-time address that file offset `offset` is loaded at, from the PT_LOAD covering it.
  func virtualAddress(ofFileOffset offset: UInt64) -> UInt64? {
    for segment in segments
    where offset >= segment.fileOffset && offset - segment.fileOffset < max(segment.fileSize, 1) {
      return segment.virtualAddress &+ (offset - segment.fileOffset)
    }
    return nil
  }
}

/// Reads byte ranges of an open file with pread, so only headers and the CFI entries in use are ever
/// loaded. Owns the descriptor: the cache keeps one per parsed file and closes it on eviction.
final class FileBytes: @unchecked Sendable {
  let descriptor: Int32

  init(descriptor: Int32) { self.descriptor = descriptor }
  deinit { close(descriptor) }

  func read(_ offset: UInt64, _ count: Int) -> [UInt8]? {
    guard count >= 0, offset < UInt64(Int64.max) else { return nil }
    if count == 0 { return [] }
    var buffer = [UInt8](repeating: 0, count: count)
    var done = 0
    while done < count {
      let result = buffer.withUnsafeMutableBytes { raw in
        pread(descriptor, raw.baseAddress! + done, count - done, off_t(offset) + off_t(done))
      }
      if result < 0, errno == EINTR { continue }
      guard result > 0 else { return nil }
      done += result
    }
    return buffer
  }
}
