import FlamespanModel
import FlamespanProcess

/// Where the fields the plug-in and the sampler follow lie in one CPython minor version's structures.
/// 3.11 and 3.12 are tabled (checked with gdb against the DWARF of pyenv's 3.11.7 and 3.12.1 libpython:
/// `p (long)&((PyThreadState*)0)->cframe` and so on); 3.13+ publishes most of them in
/// `_Py_DebugOffsets` at the start of `_PyRuntime`, which `CPythonDebugOffsets` reads.
struct CPythonOffsets: Hashable, Sendable {
  /// `_PyRuntimeState.autoTSSkey`, a `Py_tss_t { int _is_initialized; unsigned _key; }`.
  var runtimeAutoTSSKey: UInt64
  var runtimeInterpretersHead: UInt64
  var interpreterThreadsHead: UInt64
  var threadStateNext: UInt64
  /// `PyThreadState.thread_id`: the thread's pthread_t, which glibc x86-64 makes its fs base.
  var threadStateThreadID: UInt64
  var threadStateCFrame: UInt16?
  var cframeCurrentFrame: UInt16?
  var threadStateCurrentFrame: UInt16?
  var frameCode: UInt16
  var framePrevious: UInt16
  var frameInstruction: UInt16
  var frameOwner: UInt16
  var frameIsEntry: UInt16?
  /// `PyObject.ob_type`.
  var objectType: UInt64 = 8
  /// `PyVarObject.ob_size`: for a code object, its number of code units.
  var varObjectSize: UInt64 = 16
  var codeFileName: UInt64
  var codeQualifiedName: UInt64
  var codeLineTable: UInt64
  /// An `int`.
  var codeFirstLine: UInt64
  /// `_co_firsttraceable`, an `int`: the index of the first instruction a frame is complete at.
  var codeFirstTraceable: UInt64
  /// `co_code_adaptive`, the bytecode the frames' instruction pointers point into.
  var codeBytecode: UInt64
  var bytesData: UInt64
  var unicodeLength: UInt64 = 16
  var unicodeState: UInt64 = 32
  /// `sizeof(PyASCIIObject)`: a compact ASCII string's characters follow it.
  var asciiObjectSize: UInt64
  /// `sizeof(PyCompactUnicodeObject)`: a compact non-ASCII string's characters follow it.
  var compactUnicodeObjectSize: UInt64
  /// The frame owner value of 3.12+'s entry shim frames (FRAME_OWNED_BY_CSTACK), nil in 3.11.
  var shimFrameOwner: UInt8?

  /// The owner of a generator's or coroutine's frame, which is never incomplete.
  static let generatorFrameOwner: UInt8 = 1

  /// The code object field each frame's stamp is read from: the line table's address, which a freed
  /// and reused code object is all but certain not to share.
  var codeStamp: UInt16 { UInt16(codeLineTable) }

  static let python311 = CPythonOffsets(
    runtimeAutoTSSKey: 592, runtimeInterpretersHead: 40, interpreterThreadsHead: 16,
    threadStateNext: 8, threadStateThreadID: 152, threadStateCFrame: 56, cframeCurrentFrame: 8,
    threadStateCurrentFrame: nil, frameCode: 32, framePrevious: 48, frameInstruction: 56,
    frameOwner: 69, frameIsEntry: 68, codeFileName: 112, codeQualifiedName: 128,
    codeLineTable: 136, codeFirstLine: 72, codeFirstTraceable: 168, codeBytecode: 184,
    bytesData: 32, asciiObjectSize: 48, compactUnicodeObjectSize: 72, shimFrameOwner: nil)

  static let python312 = CPythonOffsets(
    runtimeAutoTSSKey: 1544, runtimeInterpretersHead: 40, interpreterThreadsHead: 72,
    threadStateNext: 8, threadStateThreadID: 136, threadStateCFrame: 56, cframeCurrentFrame: 0,
    threadStateCurrentFrame: nil, frameCode: 0, framePrevious: 8, frameInstruction: 56,
    frameOwner: 70, frameIsEntry: nil, codeFileName: 112, codeQualifiedName: 128,
    codeLineTable: 136, codeFirstLine: 68, codeFirstTraceable: 176, codeBytecode: 192,
    bytesData: 32, asciiObjectSize: 40, compactUnicodeObjectSize: 56, shimFrameOwner: 3)

  /// The tabled versions; 3.13+ are read from the process instead.
  static func tabled(minor: Int) -> CPythonOffsets? {
    switch minor {
    case 11: return python311
    case 12: return python312
    default: return nil
    }
  }

  /// What the sampler gets, for a process whose interpreter's TSS key lives at `tssAddress`.
  func walkLayout(tssAddress: UInt64, tsd: ThreadSpecificDataLayout) -> CPythonWalkLayout {
    CPythonWalkLayout(
      tssAddress: tssAddress, tsdDataOffset: tsd.dataOffset, tsdStride: tsd.stride,
      tsdKeyLimit: tsd.keyLimit, threadStateCFrame: threadStateCFrame,
      cframeCurrentFrame: cframeCurrentFrame, threadStateCurrentFrame: threadStateCurrentFrame,
      frameCode: frameCode, framePrevious: framePrevious, frameInstruction: frameInstruction,
      frameOwner: frameOwner, frameIsEntry: frameIsEntry, codeStamp: codeStamp)
  }
}

/// `_Py_DebugOffsets` (3.13+), which CPython puts at the very start of `_PyRuntime` so that tools read
/// its layout rather than table it. Layout checked with gdb against pyenv's 3.13.0
/// (`ptype /o struct _Py_DebugOffsets`): each member is a uint64_t, starting with a `size` per struct.
enum CPythonDebugOffsets {
  static let cookie = Array("xdebugpy".utf8)
  /// Bytes read: through `unicode_object.asciiobject_size` (offset 560).
  static let readBytes = 568
  /// What 3.13's `_Py_DebugOffsets` does not carry, checked with gdb on 3.13.0:
  /// `&((_PyRuntimeState*)0)->autoTSSkey` and `&((PyCodeObject*)0)->_co_firsttraceable`.
  static let tabledBeside: [Int: (autoTSSKey: UInt64, firstTraceable: UInt64)] = [
    13: (2160, 184)
  ]

  /// The offsets of a 3.13+ interpreter from the debug offsets read from its `_PyRuntime`.
  static func offsets(from bytes: [UInt8], version: CPythonVersion) throws(CPythonProblem)
    -> CPythonOffsets
  {
    guard bytes.count >= readBytes, Array(bytes[0..<8]) == cookie else {
      throw CPythonProblem("_Py_DebugOffsets has no \"xdebugpy\" cookie")
    }
    func field(_ offset: Int) -> UInt64 { littleEndian(bytes, offset, 8) }
    guard field(8) == UInt64(version.hex) else {
      throw CPythonProblem(
        "_Py_DebugOffsets is for version 0x\(String(field(8), radix: 16)), not \(version)")
    }
    guard field(16) == 0 else {
      throw CPythonProblem("free-threaded builds are not supported")
    }
    guard let beside = tabledBeside[version.minor] else {
      throw CPythonProblem("no table of autoTSSkey for \(version.major).\(version.minor)")
    }
    func small(_ offset: Int) throws(CPythonProblem) -> UInt16 {
      let value = field(offset)
      guard value < 0x1000 else {
        throw CPythonProblem("_Py_DebugOffsets field \(offset) is \(value)")
      }
      return UInt16(value)
    }
    let asciiSize = field(560)
    return CPythonOffsets(
      runtimeAutoTSSKey: beside.autoTSSKey, runtimeInterpretersHead: field(40),
      interpreterThreadsHead: field(72), threadStateNext: field(168),
      threadStateThreadID: field(192), threadStateCFrame: nil, cframeCurrentFrame: nil,
      threadStateCurrentFrame: try small(184), frameCode: try small(240),
      framePrevious: try small(232), frameInstruction: try small(248), frameOwner: try small(264),
      frameIsEntry: nil, objectType: field(360), varObjectSize: field(520),
      codeFileName: field(280), codeQualifiedName: field(296), codeLineTable: field(304),
      codeFirstLine: field(312), codeFirstTraceable: beside.firstTraceable,
      codeBytecode: field(344), bytesData: field(528), unicodeLength: field(552),
      unicodeState: field(544), asciiObjectSize: asciiSize,
      compactUnicodeObjectSize: asciiSize + 16, shimFrameOwner: 3)
  }
}

/// Why a CPython process cannot be walked or a code object read: one line for the summary.
struct CPythonProblem: Error, Sendable, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}
