/// The PT_LOAD program headers: how file offsets (what /proc/PID/maps gives) become ELF virtual addresses
/// (what DWARF and the symbol tables speak).
struct LoadSegments {
  struct Segment {
    var fileOffset: UInt64
    var fileSize: UInt64
    var virtualAddress: UInt64
    var memorySize: UInt64
  }

  var segments: [Segment]

  func containsVirtualAddress(_ address: UInt64) -> Bool {
    segments.contains {
      address >= $0.virtualAddress && address - $0.virtualAddress < $0.memorySize
    }
  }

  func virtualAddress(forFileOffset offset: UInt64) -> UInt64? {
    for segment in segments
    where offset >= segment.fileOffset && offset - segment.fileOffset < max(segment.fileSize, 1) {
      return segment.virtualAddress &+ (offset - segment.fileOffset)
    }
    return nil
  }
}
