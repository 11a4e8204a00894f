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

  public init() {}
}

/// What the CLI shows while a recording runs.
public struct RecordingProgress: Sendable {
  public var elapsedNanos: UInt64
  public var samples: Int
  public var lostSamples: UInt64
  public var processes: Int
}
