import FlamespanModel
import FlamespanProcess

// How a language runtime plugs into unwinding and symbolization.
//
// The native path knows two things: DWARF CFI to find a caller, and ELF/DWARF to name an address. Code
// that a runtime generates or lays out its own way (Go's stacks and tables, a JIT's code in anonymous
// memory, an interpreter's frames) needs knowledge of that runtime. Each runtime brings it as one plug-in
// with one contract, so the sampler and the unwinder never grow a branch per language:
//
// 1. Detect. `Runtime.attach` looks at a process's executable mappings (and whatever files they name)
//    and answers whether the process runs this runtime. It is called for every process the recorder
//    sees, so it must be cheap for the processes it does not own: most of them. What it learns (parsed
//    tables, a perf map being followed) lives in the `RuntimeProcess` it returns, and parsed files are
//    shared between processes by the plug-in itself.
// 2. Unwind. The unwinder walks a copy of the user stack. For each frame it first asks the process's
//    runtimes whether one of them `owns` the code at the frame's pc; the owner's `step` gives the caller's
//    registers, reading saved values only through the `StackMemory` it is handed (the copy: never live
//    process memory, so nothing is invented past the copy's end). Code no runtime owns is unwound with
//    DWARF CFI, then frame pointers.
// 3. Symbolize. After a recording (or a window), each address is first offered to the runtimes of its
//    process; the owner returns its frames, innermost first, with the `profile.frame.type` they are.
//    Addresses no runtime names go to the ELF/DWARF symbolizer.
// 4. Say why. A step that cannot go on returns a `StackStopReason`, which the summary counts per
//    process, so a short stack is explained rather than silently short.

/// One language runtime's support: detection, unwinding and naming of its code.
public protocol Runtime: AnyObject {
  /// A short stable name for summaries and metrics: "go", "perf-map".
  var name: String { get }
  /// What this runtime knows of process `pid`, or nil when the process does not use it. `maps` holds
  /// the executable mappings only. Called again when the process's mappings change.
  func attach(pid: Int32, maps: ProcessMaps) -> RuntimeProcess?
}

/// One runtime's view of one process.
public protocol RuntimeProcess: AnyObject {
  /// The plug-in's `Runtime.name`.
  var runtimeName: String { get }
  /// Whether this runtime unwinds and names the code at `pc`; `mapping` covers `pc`, or is nil when no
  /// executable mapping does (code mapped after the snapshot, or a JIT region). A return address is
  /// asked about as `pc - 1`, the call instruction.
  func owns(pc: UInt64, mapping: Mapping?) -> Bool
  /// The caller of the frame that executes `frame.pc` (owned by this runtime).
  func step(_ frame: FrameRegisters, memory: StackMemory) -> RuntimeStep
  /// The frames at `address` (a lookup address: return addresses are already moved back one byte onto
  /// the call), innermost first, or nil when this runtime cannot name it.
  func symbolize(address: UInt64, mapping: Mapping?) -> RuntimeSymbol?
  /// Called before a batch of unwinds or symbolizations, so a runtime whose data grows while the
  /// process runs (a JIT appending to its perf map) can catch up. Cheap when nothing changed.
  func refresh()
  /// What this runtime could not use of its data (malformed perf-map lines, say), for the summary; nil
  /// when nothing was lost.
  var problems: String? { get }
}

extension RuntimeProcess {
  public func refresh() {}
  public var problems: String? { nil }
}

/// The registers the unwinder tracks for one frame, x86-64.
public struct FrameRegisters: Sendable, Hashable {
  /// The instruction being executed (the leaf) or the return address into this frame (callers).
  public var pc: UInt64
  public var sp: UInt64
  /// nil when no rule recovered it.
  public var bp: UInt64?
  /// True for every frame but the leaf (and frames interrupted by a signal): `pc` is a return address.
  public var pcIsReturnAddress: Bool

  public init(pc: UInt64, sp: UInt64, bp: UInt64?, pcIsReturnAddress: Bool) {
    self.pc = pc
    self.sp = sp
    self.bp = bp
    self.pcIsReturnAddress = pcIsReturnAddress
  }

  /// The address to look code up by: the call instruction for a return address.
  public var lookupPC: UInt64 { pcIsReturnAddress ? pc &- 1 : pc }
}

/// The bytes of the copied user stack, read as 64-bit little-endian words.
public struct StackMemory {
  public let start: UInt64
  private let bytes: [UInt8]

  public init(start: UInt64, bytes: [UInt8]) {
    self.start = start
    self.bytes = bytes
  }

  /// One past the last copied byte.
  public var end: UInt64 { start &+ UInt64(bytes.count) }

  /// The word at `address`, or nil when it is not inside the copy.
  public func load(_ address: UInt64) -> UInt64? {
    guard address >= start, address <= end, end - address >= 8 else { return nil }
    let offset = Int(address - start)
    var value: UInt64 = 0
    for index in (0..<8).reversed() { value = value << 8 | UInt64(bytes[offset + index]) }
    return value
  }

  /// Whether `address` lies beyond the copied part of the stack (above it: the stack grows down).
  public func isBeyondCopy(_ address: UInt64) -> Bool { address &+ 8 > end }
}

/// What one runtime step found.
public enum RuntimeStep: Sendable, Hashable {
  /// The caller's registers. `bp` nil means it could not be recovered.
  case caller(FrameRegisters)
  /// This frame is the outermost one by the runtime's own rules (Go's `runtime.goexit`, a thread's
  /// start): the stack is complete.
  case outermost
  /// The walk cannot go on, and why.
  case stop(StackStopReason, detail: String)
}

/// Why a stack stopped before its outermost frame: the categories the summary and the agent's metrics
/// count per process.
public enum StackStopReason: String, Sendable, Hashable, CaseIterable, Comparable {
  /// Native code with no usable CFI and no frame-pointer chain to follow.
  case noCFI = "no CFI"
  /// Code in anonymous memory that no perf map names, whose frame pointers did not lead on.
  case jitWithoutMap = "JIT code without a map"
  /// The caller's frame lies beyond the copied part of the stack.
  case copyTooShort = "stack copy too short"
  /// The stack could not be read, or a saved register lay outside it.
  case readError = "read error"
  /// Unwind tables that exist but contradict themselves (corrupt CFI or runtime tables).
  case corruptTables = "corrupt unwind tables"
  /// More frames than the unwinder follows.
  case frameLimit = "frame limit"

  public static func < (lhs: Self, rhs: Self) -> Bool {
    allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
  }
}

/// The frames a runtime gives for one address.
public struct RuntimeSymbol: Sendable, Hashable {
  /// Innermost first; the last is the real (outermost) function.
  public var frames: [SourceFrame]
  public var frameType: FrameType
  /// Generated at run time by a JIT (`[jit]` in folded output).
  public var isJIT: Bool

  public init(frames: [SourceFrame], frameType: FrameType, isJIT: Bool) {
    self.frames = frames
    self.frameType = frameType
    self.isJIT = isJIT
  }
}

/// A runtime whose interpreter keeps its own frame chain in memory (CPython). Native unwinding sees only
/// the eval loop; the names are in the interpreter's frames, which must be read at sample time because
/// they change with every call. So such a plug-in adds three things to the contract:
///
/// - it publishes a `CPythonWalkLayout`, by which the sampler walks the chain of the sampled thread;
/// - it names a sampled chain as soon as the sample arrives, while the code objects it points at are
///   still alive (a later read could find the memory freed and reused);
/// - it says which native frames are the eval loop, where the named frames are spliced in.
public protocol InterpreterRuntimeProcess: RuntimeProcess {
  /// What the sampler needs to walk this process's frames; nil while the interpreter cannot be walked
  /// yet (not yet initialized: asked again at each `refresh`) or at all (an unknown version: `problems`
  /// says why, and the process keeps its native stacks).
  var samplerLayout: CPythonWalkLayout? { get }
  /// The interpreter and its version, for the summary: "CPython 3.11.2".
  var versionDescription: String { get }
  /// The frames of one sampled chain, innermost first. Never throws and never guesses: a frame whose
  /// code object cannot be read and checked is an unknown frame, counted in `unknownFrames`.
  func name(_ stack: InterpreterStackRecord) -> [InterpreterFrame]
  /// Whether the native code at `address` (a lookup address) is the interpreter's eval loop, each call
  /// of which runs one group of interpreter frames.
  func isEvalLoop(address: UInt64, mapping: Mapping?) -> Bool
  /// Frames `name` could not name, since the process was attached.
  var unknownFrames: Int { get }
}
