/// pcvalue tables: for each function, runs of pcs sharing one value (SP delta, file index, line).
/// Encoded as pairs (zigzag varint value delta, varint pc delta in units of minLC); the value starts
/// at -1 and the pc at the function's entry; a value delta of 0 after the first pair ends the table.
extension GoPCLNTable {
  /// The value of the pcvalue table at `tableOffset` (relative to pctab) for `pc` in `function`.
  func pcValue(_ tableOffset: UInt32, function: GoFunction, pc: UInt64, _ what: String)
    throws(GoPCLNError) -> Int32
  {
    guard tableOffset != 0 else {
      throw GoPCLNError(.malformed, "\(function.name) has no \(what) table")
    }
    guard pc >= function.entry, pc < function.end else {
      throw GoPCLNError(
        .malformed, "pc 0x\(String(pc, radix: 16)) is outside \(function.name)")
    }
    var cursor = pctabOffset + UInt64(tableOffset)
    var value: Int64 = -1
    var runStart = function.entry
    var first = true
    // Every pair moves the pc forward by at least one quantum (a zero step is corrupt), and no run
    // may pass the function's end, so the walk ends within the function's size, or the table's bytes.
    while true {
      let valueDelta = try bytes.uvarint(&cursor, "\(what) table of \(function.name)")
      if valueDelta == 0 && !first { break }
      first = false
      let magnitude = Int64(valueDelta >> 1)
      value += valueDelta & 1 != 0 ? -magnitude - 1 : magnitude
      let pcDelta =
        UInt64(try bytes.uvarint(&cursor, "\(what) table of \(function.name)"))
        * UInt64(minLC)
      guard pcDelta > 0, pcDelta <= function.end - runStart else {
        throw GoPCLNError(
          .malformed,
          "\(what) table of \(function.name) has a run of \(pcDelta) bytes at 0x\(String(runStart, radix: 16))"
        )
      }
      runStart += pcDelta
      if pc < runStart {
        guard let result = Int32(exactly: value) else {
          throw GoPCLNError(.malformed, "\(what) value \(value) of \(function.name) overflows")
        }
        return result
      }
    }
    throw GoPCLNError(
      .malformed, "\(what) table of \(function.name) ends before pc 0x\(String(pc, radix: 16))")
  }

  /// How far SP at `pc` lies below the SP at entry (where the return address is): the frame size so far.
  public func spDelta(of function: GoFunction, at pc: UInt64) throws(GoPCLNError) -> Int32 {
    try pcValue(function.pcsp, function: function, pc: pc, "pcsp")
  }

  /// The first pc of `function` at which its SP delta is not zero (the end of the stack-check
  /// preamble, where the frame is allocated), or nil for a function without a frame.
  public func frameAllocationPC(of function: GoFunction) throws(GoPCLNError) -> UInt64? {
    var cursor = pctabOffset + UInt64(function.pcsp)
    guard function.pcsp != 0 else {
      throw GoPCLNError(.malformed, "\(function.name) has no pcsp table")
    }
    var value: Int64 = -1
    var runStart = function.entry
    var first = true
    while runStart < function.end {
      let valueDelta = try bytes.uvarint(&cursor, "pcsp table of \(function.name)")
      if valueDelta == 0 && !first { break }
      first = false
      let magnitude = Int64(valueDelta >> 1)
      value += valueDelta & 1 != 0 ? -magnitude - 1 : magnitude
      if value != 0 { return runStart }
      let pcDelta =
        UInt64(try bytes.uvarint(&cursor, "pcsp table of \(function.name)"))
        * UInt64(minLC)
      guard pcDelta > 0, pcDelta <= function.end - runStart else {
        throw GoPCLNError(
          .malformed, "pcsp table of \(function.name) has a run of \(pcDelta) bytes")
      }
      runStart += pcDelta
    }
    return nil
  }

  /// The source file and line of `pc` in `function`. The file is nil when the table names none.
  public func sourcePosition(of function: GoFunction, at pc: UInt64) throws(GoPCLNError) -> (
    file: String?, line: Int
  ) {
    let fileIndex = try pcValue(function.pcfile, function: function, pc: pc, "pcfile")
    let line = try pcValue(function.pcln, function: function, pc: pc, "pcln")
    return (try fileName(compilationUnit: function.cuOffset, index: fileIndex), Int(line))
  }

  /// File `index` of the compilation unit starting at `compilationUnit` in the cu table.
  func fileName(compilationUnit: UInt32, index: Int32) throws(GoPCLNError) -> String? {
    guard index >= 0 else { return nil }
    let slot = UInt64(compilationUnit) + UInt64(index)
    let fileOffset = try bytes.u32(cuOffset + slot * 4, "cu table slot \(slot)")
    guard fileOffset != UInt32.max else { return nil }
    return try bytes.cString(filetabOffset + UInt64(fileOffset), "file name")
  }
}
