import FlamespanBPF
import FlamespanModel
import FlamespanSymbolizer

public struct RecordingOptions: Sendable {
  /// Samples per second per CPU.
  public var frequency: Int = 99
  /// Processes to sample (with their threads and children); nil samples the whole machine.
  public var pids: [Int32]?
  /// Stop after this many nanoseconds; nil runs until stopped, or until the command or every pid exits.
  public var durationNanos: UInt64?
  /// A command to launch and profile until it exits.
  public var command: [String]?
  public var symbolizer = SymbolizerOptions()
  /// Count stacks in kernel maps rather than streaming samples; see `SamplerConfiguration.aggregateInKernel`.
  public var aggregateInKernel = false
  /// How user stacks are walked; see `UserStackUnwinding`.
  public var unwinding: UserStackUnwinding = .automatic
  /// auto and dwarf modes: bytes of user stack copied per sample (8...65536).
  public var userStackCopyBytes = 16384
  /// Trace HTTP/1.x exchanges of the sampled processes and label samples with the span they served.
  /// When the L7 tracer cannot load (no tracefs, say) the recording goes on without spans, with a warning.
  public var traceHTTP = true
  /// The kernel hooks of the HTTP tracer.
  public var httpHooks: L7Hooks = .automatic

  public init() {}
}

/// How user stacks are walked.
public enum UserStackUnwinding: String, Sendable, CaseIterable {
  /// Whether samples carry a copy of the user stack.
  public var copiesStacks: Bool { self != .framePointers }

  /// The default. Each sample carries a copy of the top of the user stack, and each frame is unwound by
  /// what its code needs: the runtime plug-ins (Go's .gopclntab, a JIT's perf map), DWARF CFI for native
  /// code, and frame pointers through code that has no CFI (JIT output, binaries built without it).
  /// Copying always was measured cheaper than deciding per mapping in the kernel: see
  /// bench/overhead/RESULTS.md.
  case automatic = "auto"
  /// The kernel follows frame pointers (bpf_get_stack): no extra cost, but stacks stop early in code built
  /// without them (most distribution libraries, including Debian's libc).
  case framePointers = "fp"
  /// Each sample carries the user registers and a copy of the top of the user stack, unwound in user space
  /// with the DWARF CFI of each mapped file only (no runtime plug-ins, no frame-pointer fallback). Complete stacks without frame pointers, at the cost of ~16 KiB
  /// of ring buffer traffic and a few microseconds of user-space CPU per sample.
  case dwarf
}

/// What the CLI shows while a recording runs.
public struct RecordingProgress: Sendable {
  public var elapsedNanos: UInt64
  public var samples: Int
  public var lostSamples: UInt64
  public var processes: Int
}
