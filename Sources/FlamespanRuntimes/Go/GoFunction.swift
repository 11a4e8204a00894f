/// One function record (`_func`) of a `.gopclntab`.
public struct GoFunction: Sendable, Hashable {
  /// Link-time address of the first instruction.
  public let entry: UInt64
  /// Link-time address one past the last instruction (the next function's entry).
  public let end: UInt64
  public let name: String
  /// funcFlag bits: `topFrame`, `spWrite`.
  public let flags: UInt8
  public let funcID: UInt8
  /// Go 1.20+: the line of the `func` keyword; nil before.
  public let startLine: Int32?

  let pcsp: UInt32
  let pcfile: UInt32
  let pcln: UInt32
  let cuOffset: UInt32
  let pcdataCount: UInt32
  let funcdataCount: UInt8
  /// Where the record lies in the table, to reach its pcdata and funcdata offsets.
  let recordOffset: UInt64

  public static let topFrameFlag: UInt8 = 1
  public static let spWriteFlag: UInt8 = 2

  /// The outermost frame of a goroutine or thread: runtime.goexit, mstart, rt0_go.
  public var isTopFrame: Bool { flags & Self.topFrameFlag != 0 }
  /// Writes SP in ways the pcsp table does not describe (stack switches); Go's traceback ends there.
  public var isSPWrite: Bool { flags & Self.spWriteFlag != 0 }

  init(table: GoPCLNTable, recordOffset: UInt64, entryOffset: UInt32, endOffset: UInt32)
    throws(GoPCLNError)
  {
    let bytes = table.bytes
    let base = recordOffset
    let fixedSize: UInt64 = table.version == .go120 ? 44 : 40
    _ = try bytes.checked(base, length: Int(fixedSize), "function record")
    let recordEntry = try bytes.u32(base, "function record entry")
    guard recordEntry == entryOffset else {
      throw GoPCLNError(
        .malformed,
        "function record at 0x\(String(base, radix: 16)) has entry 0x\(String(recordEntry, radix: 16)), "
          + "the function table says 0x\(String(entryOffset, radix: 16))")
    }
    let nameOffset = try bytes.u32(base + 4, "function name offset")
    pcsp = try bytes.u32(base + 16, "pcsp offset")
    pcfile = try bytes.u32(base + 20, "pcfile offset")
    pcln = try bytes.u32(base + 24, "pcln offset")
    pcdataCount = try bytes.u32(base + 28, "npcdata")
    cuOffset = try bytes.u32(base + 32, "cu offset")
    var tail = base + 36
    if table.version == .go120 {
      startLine = Int32(bitPattern: try bytes.u32(tail, "start line"))
      tail += 4
    } else {
      startLine = nil
    }
    funcID = try bytes.u8(tail, "funcID")
    flags = try bytes.u8(tail + 1, "flag")
    funcdataCount = try bytes.u8(tail + 3, "nfuncdata")
    guard pcdataCount < 1 << 16 else {
      throw GoPCLNError(.malformed, "function record has \(pcdataCount) pcdata tables")
    }
    self.recordOffset = recordOffset
    entry = table.textStart + UInt64(entryOffset)
    end = table.textStart + UInt64(endOffset)
    // nameOff is signed in the record; a negative one is as corrupt as one past the end.
    guard Int32(bitPattern: nameOffset) >= 0 else {
      throw GoPCLNError(
        .malformed, "function at entry 0x\(String(entry, radix: 16)) has a negative name offset")
    }
    name = try bytes.cString(table.funcnameOffset + UInt64(nameOffset), "function name")
  }
}
