import FlamespanModel

/// One CPU sample as the kernel captured it, before any symbolization.
public struct RawSample: Sendable {
  public var pid: Int32
  public var tid: Int32
  public var cpu: UInt32
  /// CLOCK_MONOTONIC nanoseconds.
  public var timeNanos: UInt64
  public var threadName: String
  /// Leaf first.
  public var kernelStack: [UInt64]
  /// Leaf first.
  public var userStack: [UInt64]
  /// Positive errno when the kernel could not read that stack.
  public var kernelStackErrno: Int32?
  public var userStackErrno: Int32?
  /// The span active on the thread when the sample was taken (the L7 tracer's `traces_ctx_v1` entry).
  public var span: SpanContext?
  /// DWARF unwinding mode: the user registers and the copy of the user stack starting at `registers.sp`.
  public var userStackCopy: UserStackCopy?
  /// Stack-copy modes, for a process published with `CPUSampler.publishInterpreter`: the sampled
  /// thread's interpreter frames, innermost first; nil when the thread ran no interpreter code.
  public var interpreterStack: InterpreterStackRecord?

  public init(
    pid: Int32, tid: Int32, cpu: UInt32, timeNanos: UInt64, threadName: String,
    kernelStack: [UInt64],
    userStack: [UInt64], kernelStackErrno: Int32? = nil, userStackErrno: Int32? = nil,
    span: SpanContext? = nil, userStackCopy: UserStackCopy? = nil,
    interpreterStack: InterpreterStackRecord? = nil
  ) {
    self.pid = pid
    self.tid = tid
    self.cpu = cpu
    self.timeNanos = timeNanos
    self.threadName = threadName
    self.kernelStack = kernelStack
    self.userStack = userStack
    self.kernelStackErrno = kernelStackErrno
    self.userStackErrno = userStackErrno
    self.span = span
    self.userStackCopy = userStackCopy
    self.interpreterStack = interpreterStack
  }
}

/// The top of a thread's user stack as the sampler copied it: `bytes` were read from `registers.sp` up.
public struct UserStackCopy: Sendable {
  public var registers: UserRegisters
  public var bytes: [UInt8]
  /// Positive errno of the read that stopped the copy before the configured size (the end of the stack
  /// mapping, usually), or nil when the full size was copied.
  public var stopErrno: Int32?

  public init(registers: UserRegisters, bytes: [UInt8], stopErrno: Int32? = nil) {
    self.registers = registers
    self.bytes = bytes
    self.stopErrno = stopErrno
  }
}

public enum ProcessChange: Sendable, Equatable {
  case exec
  case exit
}

public enum SamplerEvent: Sendable {
  case sample(RawSample)
  case process(ProcessChange, pid: Int32, timeNanos: UInt64, name: String)
  /// A record we could not decode; counted, never fatal.
  case malformed(size: Int)
}

/// What the kernel side counted, summed over CPUs.
public struct SamplerCounters: Sendable, Equatable {
  public var samples: UInt64 = 0
  public var ringBufferFull: UInt64 = 0
  public var kernelStackErrors: UInt64 = 0
  public var userStackErrors: UInt64 = 0
  public var idle: UInt64 = 0
  public var filtered: UInt64 = 0
  public var processEventsLost: UInt64 = 0
  public var targetsFull: UInt64 = 0
  /// In-kernel aggregation: stacks that could not be stored (map full or hash collision); the sample counts.
  public var stackMapFull: UInt64 = 0
  /// In-kernel aggregation: samples lost because the counts map was full.
  public var countsFull: UInt64 = 0
  /// DWARF mode: samples whose user stack could not be read at all at the stack pointer.
  public var stackCopyFailed: UInt64 = 0
  /// DWARF mode: copies that ended early at an unreadable page (normal at the top of a stack).
  public var stackCopyShort: UInt64 = 0
  /// Stack-copy modes: samples of a published interpreter process whose thread was running interpreter
  /// code, so that its frame chain was walked.
  public var pythonStacks: UInt64 = 0
  /// Walked chains deeper than the sampler follows (64 frames): their outermost frames are missing.
  public var pythonTruncated: UInt64 = 0
  /// Walks stopped by an unreadable thread state or frame (the frames before it are kept).
  public var pythonReadFailed: UInt64 = 0

  public init() {}

  /// Samples that were taken but never reached user space.
  public var lostSamples: UInt64 { ringBufferFull + countsFull }
}
