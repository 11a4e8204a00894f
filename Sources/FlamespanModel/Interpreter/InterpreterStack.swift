/// One frame of an interpreter's own frame chain, as the sampler read it at sample time (CPython: one
/// `_PyInterpreterFrame`). Only addresses: the plug-in that owns the process turns them into names.
public struct InterpreterFrameRecord: Hashable, Sendable {
  /// The frame's code object.
  public var code: UInt64
  /// The frame's instruction pointer, into the code object's bytecode.
  public var instruction: UInt64
  /// Four bytes of the code object read at sample time; a different stamp for a cached address means
  /// the code object was freed and the address reused.
  public var stamp: UInt32
  /// The frame's owner field (CPython 3.12+ marks the entry shim frames with it).
  public var owner: UInt8
  /// CPython 3.11's `is_entry`: the first frame run by one C-level call of the eval loop.
  public var isEntry: Bool

  public init(code: UInt64, instruction: UInt64, stamp: UInt32, owner: UInt8, isEntry: Bool) {
    self.code = code
    self.instruction = instruction
    self.stamp = stamp
    self.owner = owner
    self.isEntry = isEntry
  }
}

/// How far the sampler got along a thread's interpreter frame chain.
public enum InterpreterStackStatus: Hashable, Sendable {
  /// Walked to the outermost frame.
  case complete
  /// More frames than the sampler follows: the outermost ones are missing.
  case truncated
  /// A read failed (positive errno); the frames before it are kept.
  case readFailed(errno: Int32)
}

/// A thread's interpreter frames at one sample, innermost first.
public struct InterpreterStackRecord: Hashable, Sendable {
  /// The interpreter's per-thread state the walk started from (CPython's `PyThreadState`).
  public var threadState: UInt64
  public var frames: [InterpreterFrameRecord]
  public var status: InterpreterStackStatus

  public init(threadState: UInt64, frames: [InterpreterFrameRecord], status: InterpreterStackStatus)
  {
    self.threadState = threadState
    self.frames = frames
    self.status = status
  }
}

/// One named interpreter frame, ready to be merged into a native stack.
public struct InterpreterFrame: Hashable, Sendable {
  /// Function (CPython: the code's qualified name), file and the line being run; for a frame that could
  /// not be named, the function is a bracketed marker such as "[unknown Python frame]".
  public var frame: SourceFrame
  /// The outermost of the frames that one native call of the eval loop runs: the next frame (if any)
  /// belongs to the next eval-loop frame out in the native stack.
  public var endsEvalGroup: Bool
  /// The frame could not be named (freed or changed code object, torn read, unknown layout).
  public var isUnknown: Bool

  public init(frame: SourceFrame, endsEvalGroup: Bool, isUnknown: Bool = false) {
    self.frame = frame
    self.endsEvalGroup = endsEvalGroup
    self.isUnknown = isUnknown
  }
}
