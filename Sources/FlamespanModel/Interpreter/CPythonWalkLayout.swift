/// What the sampler needs to find and walk one CPython process's frames at sample time: where the
/// interpreter's thread-state TSS key lives, how glibc lays out a thread's TSS slots, and the offsets of
/// the fields it follows. Mirrors `struct fs_python_process` (flamespan_abi.h); nil offsets are the
/// fields this CPython version does not have.
public struct CPythonWalkLayout: Hashable, Sendable {
  /// The interpreter's `Py_tss_t autoTSSkey` in the process's address space.
  public var tssAddress: UInt64
  /// From a thread's fs base to the data pointer of TSS key 0 (glibc x86-64: 0x318).
  public var tsdDataOffset: Int64
  /// Bytes between two keys' slots (glibc: 16).
  public var tsdStride: UInt32
  /// Keys at or above this are in a second-level block the sampler does not follow (glibc: 32).
  public var tsdKeyLimit: UInt32
  /// `PyThreadState.cframe` (3.11, 3.12).
  public var threadStateCFrame: UInt16?
  /// `_PyCFrame.current_frame` (3.11, 3.12).
  public var cframeCurrentFrame: UInt16?
  /// `PyThreadState.current_frame` (3.13+).
  public var threadStateCurrentFrame: UInt16?
  public var frameCode: UInt16
  public var framePrevious: UInt16
  public var frameInstruction: UInt16
  public var frameOwner: UInt16
  /// `_PyInterpreterFrame.is_entry` (3.11 only).
  public var frameIsEntry: UInt16?
  /// The offset of the four bytes of a code object recorded as each frame's stamp.
  public var codeStamp: UInt16

  public init(
    tssAddress: UInt64, tsdDataOffset: Int64, tsdStride: UInt32, tsdKeyLimit: UInt32,
    threadStateCFrame: UInt16?, cframeCurrentFrame: UInt16?, threadStateCurrentFrame: UInt16?,
    frameCode: UInt16, framePrevious: UInt16, frameInstruction: UInt16, frameOwner: UInt16,
    frameIsEntry: UInt16?, codeStamp: UInt16
  ) {
    self.tssAddress = tssAddress
    self.tsdDataOffset = tsdDataOffset
    self.tsdStride = tsdStride
    self.tsdKeyLimit = tsdKeyLimit
    self.threadStateCFrame = threadStateCFrame
    self.cframeCurrentFrame = cframeCurrentFrame
    self.threadStateCurrentFrame = threadStateCurrentFrame
    self.frameCode = frameCode
    self.framePrevious = framePrevious
    self.frameInstruction = frameInstruction
    self.frameOwner = frameOwner
    self.frameIsEntry = frameIsEntry
    self.codeStamp = codeStamp
  }
}
