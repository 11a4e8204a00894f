/// Go's own function table, `.gopclntab`: function bounds and names, the SP delta at every pc (pcsp),
/// file and line tables, and flags. It is what the Go runtime unwinds and prints tracebacks with, so it
/// is present in every Go binary, stripped (`-ldflags='-s -w'`) or not, where .eh_frame is absent and
/// DWARF may be compressed or gone.
///
/// Layouts read: Go 1.18–1.19 (magic 0xfffffff0) and Go 1.20+ (0xfffffff1, whose function records
/// carry a start line). Older layouts are refused with a reason.
///
/// All addresses here are link-time addresses of the binary; a process view translates.
public struct GoPCLNTable: Sendable {
  public enum Version: Sendable, Hashable {
    /// Go 1.18 and 1.19.
    case go118
    /// Go 1.20 and later.
    case go120
  }

  public let version: Version
  /// The instruction size quantum (1 on x86).
  public let minLC: UInt8
  public let pointerSize: UInt8
  public let functionCount: Int
  public let fileCount: Int
  /// The address function entry offsets are relative to (runtime.text).
  public let textStart: UInt64
  /// The addresses the function table covers: first entry up to the end sentinel.
  public let textRange: Range<UInt64>

  let bytes: GoTableBytes
  let funcnameOffset: UInt64
  let cuOffset: UInt64
  let filetabOffset: UInt64
  let pctabOffset: UInt64
  /// Start of the functab; function record offsets are relative to it too.
  let pclnOffset: UInt64

  static let magic118: UInt32 = 0xffff_fff0
  static let magic120: UInt32 = 0xffff_fff1

  /// Decodes the header of the section's bytes. `textSectionAddress` stands in for a header whose
  /// text start was left for a dynamic relocation to fill (0 in the file).
  public init(bytes raw: [UInt8], textSectionAddress: UInt64? = nil) throws(GoPCLNError) {
    let bytes = GoTableBytes(bytes: raw)
    let magic = try bytes.u32(0, "header magic")
    switch magic {
    case Self.magic118: version = .go118
    case Self.magic120: version = .go120
    case 0xffff_fffa:
      throw GoPCLNError(
        .unsupportedVersion, "Go 1.16–1.17 layout (magic 0xfffffffa) is not supported; 1.18+ only")
    case 0xffff_fffb:
      throw GoPCLNError(
        .unsupportedVersion, "Go 1.2–1.15 layout (magic 0xfffffffb) is not supported; 1.18+ only")
    default:
      throw GoPCLNError(.unsupportedVersion, "unknown magic 0x\(String(magic, radix: 16))")
    }
    guard try bytes.u8(4, "header pad") == 0, try bytes.u8(5, "header pad") == 0 else {
      throw GoPCLNError(.malformed, "header padding is not zero")
    }
    minLC = try bytes.u8(6, "minLC")
    pointerSize = try bytes.u8(7, "pointer size")
    guard [1, 2, 4].contains(minLC) else {
      throw GoPCLNError(.malformed, "instruction quantum \(minLC) is not 1, 2 or 4")
    }
    guard pointerSize == 4 || pointerSize == 8 else {
      throw GoPCLNError(.malformed, "pointer size \(pointerSize) is not 4 or 8")
    }
    let size = Int(pointerSize)
    var words: [UInt64] = []
    let names = [
      "nfunc", "nfiles", "textStart", "funcnameOffset", "cuOffset", "filetabOffset",
      "pctabOffset", "pclnOffset",
    ]
    for (index, name) in names.enumerated() {
      words.append(try bytes.word(UInt64(8 + index * size), size: size, "header \(name)"))
    }
    let tableEnd = UInt64(raw.count)
    for index in 3..<8 where words[index] >= tableEnd {
      throw GoPCLNError(
        .malformed,
        "header \(names[index]) 0x\(String(words[index], radix: 16)) lies outside the table")
    }
    // Each function needs at least an 8-byte functab pair, so a count beyond that is corrupt.
    guard words[0] > 0, words[0] < tableEnd / 8, words[1] < tableEnd else {
      throw GoPCLNError(
        .malformed, "header counts nfunc \(words[0]) nfiles \(words[1]) are impossible")
    }
    functionCount = Int(words[0])
    fileCount = Int(words[1])
    textStart = words[2] != 0 ? words[2] : (textSectionAddress ?? 0)
    funcnameOffset = words[3]
    cuOffset = words[4]
    filetabOffset = words[5]
    pctabOffset = words[6]
    pclnOffset = words[7]
    self.bytes = bytes
    _ = try bytes.checked(pclnOffset, length: (functionCount + 1) * 8, "function table")
    let first = UInt64(try Self.entryOffset(bytes, pclnOffset, 0))
    let last = UInt64(try Self.entryOffset(bytes, pclnOffset, functionCount))
    guard first < last, textStart <= UInt64.max - last else {
      throw GoPCLNError(
        .malformed,
        "function table bounds 0x\(String(first, radix: 16))..0x\(String(last, radix: 16)) are empty"
      )
    }
    textRange = (textStart + first)..<(textStart + last)
  }

  private static func entryOffset(_ bytes: GoTableBytes, _ pclnOffset: UInt64, _ index: Int)
    throws(GoPCLNError) -> UInt32
  {
    try bytes.u32(pclnOffset + UInt64(index) * 8, "functab entry \(index)")
  }

  func entryOffset(_ index: Int) throws(GoPCLNError) -> UInt32 {
    try Self.entryOffset(bytes, pclnOffset, index)
  }

  /// The function whose code covers link-time address `pc`, or nil when `pc` is outside the table.
  public func function(at pc: UInt64) throws(GoPCLNError) -> GoFunction? {
    guard textRange.contains(pc) else { return nil }
    let target = pc - textStart
    // The last entry whose start is at or below the target; the sentinel at functionCount bounds it.
    var low = 0
    var high = functionCount
    while high - low > 1 {
      let middle = (low + high) / 2
      if UInt64(try entryOffset(middle)) <= target { low = middle } else { high = middle }
    }
    let start = UInt64(try entryOffset(low))
    let end = UInt64(try entryOffset(low + 1))
    // Past the end sentinel is unsorted too, and would overflow the end's address (found by the
    // gopclntab fuzz target: Fuzz/Crashers/gopclntab/).
    guard start <= target, target < end, end <= textRange.upperBound - textStart else {
      throw GoPCLNError(
        .malformed, "function table is not sorted around pc 0x\(String(pc, radix: 16))")
    }
    let recordOffset = try bytes.u32(pclnOffset + UInt64(low) * 8 + 4, "functab record \(low)")
    return try GoFunction(
      table: self, recordOffset: pclnOffset + UInt64(recordOffset), entryOffset: UInt32(start),
      endOffset: UInt32(end))
  }
}
