import FlamespanModel

/// Go's inline tree: which functions the compiler inlined at a pc, read from `.gopclntab` and
/// `go:func.*`, so that stripped binaries name inlined code as DWARF does for unstripped ones.
///
/// A function's pcdata table 2 (PCDATA_InlTreeIndex) maps each pc to an index into its inline tree
/// (funcdata 3, FUNCDATA_InlTree, an offset from moduledata.gofunc), or -1 where the code is the
/// function's own. Each tree entry names the inlined function and leads to its caller's entry:
///
/// - Go 1.18/1.19 (`inlinedCall`, 20 bytes): parent int16, funcID uint8, pad, file int32 (a per-CU file
///   index), line int32 (the call site), nameOff int32, parentPc int32.
/// - Go 1.20+ (16 bytes): funcID uint8, 3 pad, nameOff int32, parentPc int32, startLine int32. The call
///   site is no longer recorded; it is the position of the instruction at entry + parentPc, whose own
///   inline index is the caller's entry (runtime/symtabinl.go's inlineUnwinder).
extension GoPCLNTable {
  /// PCDATA_InlTreeIndex.
  static let inlineTreeIndexTable: UInt32 = 2
  /// FUNCDATA_InlTree.
  static let inlineTreeFuncdata: UInt32 = 3
  /// No real chain is this deep; a longer one is a loop in corrupt data.
  public static let maximumInlineDepth = 64

  /// How the caller's position is found for each inlined frame.
  enum CallSiteRule {
    /// Go 1.18/1.19: the entry's file and line fields, and its parent index.
    case recordedPosition
    /// Go 1.20+ (and what the 1.19 runtime's own traceback does): the position and inline index of
    /// the instruction at entry + parentPc.
    case parentPC
  }

  /// Where the variable part of `function`'s record starts: npcdata pcdata offsets, then nfuncdata
  /// funcdata offsets.
  private func recordTail(_ function: GoFunction) -> UInt64 {
    function.recordOffset + (version == .go120 ? 44 : 40)
  }

  /// The value of pcdata table `index` at `pc`, or -1 when the function has no such table.
  func pcdataValue(_ function: GoFunction, table index: UInt32, at pc: UInt64)
    throws(GoPCLNError) -> Int32
  {
    guard index < function.pcdataCount else { return -1 }
    let offset = try bytes.u32(
      recordTail(function) + UInt64(index) * 4, "pcdata \(index) offset of \(function.name)")
    guard offset != 0 else { return -1 }
    return try pcValue(offset, function: function, pc: pc, "pcdata \(index)")
  }

  /// Funcdata `index` of `function` as an offset from gofunc, or nil when it has none.
  func funcdataOffset(_ function: GoFunction, index: UInt32) throws(GoPCLNError) -> UInt32? {
    guard index < UInt32(function.funcdataCount) else { return nil }
    let offset = try bytes.u32(
      recordTail(function) + UInt64(function.pcdataCount) * 4 + UInt64(index) * 4,
      "funcdata \(index) offset of \(function.name)")
    return offset == UInt32.max ? nil : offset
  }

  /// The frames at `pc` in `function`, innermost first: each inlined function with the position inside
  /// it (the innermost one with `pc`'s own file and line, each caller with its call site), and
  /// `function` itself last. Without `funcData`, or for a function with no inline tree, that is
  /// `function` alone. Corrupt tree data is an error, and a chain longer than `maximumInlineDepth` too.
  public func frames(of function: GoFunction, at pc: UInt64, funcData: GoFuncData?)
    throws(GoPCLNError) -> [SourceFrame]
  {
    try frames(
      of: function, at: pc, funcData: funcData,
      rule: version == .go118 ? .recordedPosition : .parentPC)
  }

  func frames(of function: GoFunction, at pc: UInt64, funcData: GoFuncData?, rule: CallSiteRule)
    throws(GoPCLNError) -> [SourceFrame]
  {
    var (file, line) = try sourcePosition(of: function, at: pc)
    var frames: [SourceFrame] = []
    if let funcData,
      let tree = try funcdataOffset(function, index: Self.inlineTreeFuncdata)
    {
      var index = try pcdataValue(function, table: Self.inlineTreeIndexTable, at: pc)
      while index >= 0 {
        guard frames.count < Self.maximumInlineDepth else {
          throw GoPCLNError(
            .malformed, "inline chain of \(function.name) is deeper than \(Self.maximumInlineDepth)"
          )
        }
        let call = try inlinedCall(tree: tree, index: index, funcData: funcData, function: function)
        frames.append(SourceFrame(function: call.name, file: file, line: line))
        switch rule {
        case .recordedPosition:
          guard let recordedLine = call.line, let recordedFile = call.file,
            let parent = call.parent
          else {
            throw GoPCLNError(.malformed, "Go 1.20+ inline entries record no call site")
          }
          // The compiler adds a call's parent to the tree before it, so parents have lower indices;
          // anything else is corrupt and could loop.
          guard parent < index else {
            throw GoPCLNError(
              .malformed, "inline entry \(index) of \(function.name) has parent \(parent)")
          }
          file = try fileName(compilationUnit: function.cuOffset, index: recordedFile)
          line = Int(recordedLine)
          index = parent
        case .parentPC:
          guard call.parentPC >= 0, UInt64(call.parentPC) < function.end - function.entry else {
            throw GoPCLNError(
              .malformed, "inline entry \(index) of \(function.name) has parentPc \(call.parentPC)")
          }
          let callPC = function.entry + UInt64(call.parentPC)
          (file, line) = try sourcePosition(of: function, at: callPC)
          index = try pcdataValue(function, table: Self.inlineTreeIndexTable, at: callPC)
        }
      }
    }
    frames.append(SourceFrame(function: function.name, file: file, line: line))
    return frames
  }

  /// One decoded inline tree entry; the Go 1.18/1.19-only fields are nil for 1.20+.
  struct InlinedCall {
    var name: String
    var parentPC: Int32
    var parent: Int32?
    var file: Int32?
    var line: Int32?
  }

  func inlinedCall(tree: UInt32, index: Int32, funcData: GoFuncData, function: GoFunction)
    throws(GoPCLNError) -> InlinedCall
  {
    let data = funcData.bytes
    let size: UInt64 = version == .go118 ? 20 : 16
    let base = UInt64(tree) + UInt64(index) * size
    let what = "inline entry \(index) of \(function.name)"
    _ = try data.checked(base, length: Int(size), what)
    func i32(_ offset: UInt64) throws(GoPCLNError) -> Int32 {
      Int32(bitPattern: try data.u32(base + offset, what))
    }
    let call: InlinedCall
    let nameOffset: Int32
    if version == .go118 {
      let parent = Int16(
        bitPattern: UInt16(try data.u8(base, what)) | UInt16(try data.u8(base + 1, what)) << 8)
      nameOffset = try i32(12)
      call = InlinedCall(
        name: "", parentPC: try i32(16), parent: Int32(parent), file: try i32(4), line: try i32(8))
    } else {
      nameOffset = try i32(4)
      call = InlinedCall(name: "", parentPC: try i32(8), parent: nil, file: nil, line: nil)
    }
    guard nameOffset >= 0 else {
      throw GoPCLNError(.malformed, "\(what) has a negative name offset")
    }
    var named = call
    named.name = try bytes.cString(funcnameOffset + UInt64(nameOffset), "\(what) name")
    return named
  }
}
