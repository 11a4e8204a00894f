/// The trace and span that were active on a thread when a sample was taken.
public struct SpanContext: Hashable, Sendable {
  /// 16 bytes.
  public var traceID: [UInt8]
  /// 8 bytes.
  public var spanID: [UInt8]
  public var name: String?

  public init(traceID: [UInt8], spanID: [UInt8], name: String? = nil) {
    self.traceID = traceID
    self.spanID = spanID
    self.name = name
  }

  public var traceIDHex: String { HexCoding.encode(traceID) }
  public var spanIDHex: String { HexCoding.encode(spanID) }
}

/// A distinct stack with its labels and how often it was seen.
public struct ProfileSample: Hashable, Sendable {
  /// Leaf first. Kernel frames (if any) come before user frames, as the CPU saw them.
  public var stack: [ResolvedLocation]
  public var pid: Int32
  public var tid: Int32
  public var threadName: String
  public var span: SpanContext?
  /// Number of samples with exactly this stack and these labels.
  public var count: Int64

  public init(
    stack: [ResolvedLocation], pid: Int32, tid: Int32, threadName: String, span: SpanContext? = nil,
    count: Int64
  ) {
    self.stack = stack
    self.pid = pid
    self.tid = tid
    self.threadName = threadName
    self.span = span
    self.count = count
  }
}

/// An aggregated CPU profile: what every exporter writes and what `drill` reads back.
public struct Profile: Sendable {
  public var samples: [ProfileSample]
  /// Nanoseconds of CPU time one sample stands for (1e9 / frequency).
  public var periodNanos: Int64
  /// Wall-clock start, nanoseconds since the Unix epoch.
  public var startTimeNanos: Int64
  public var durationNanos: Int64
  /// Free-text notes carried into pprof comments, such as lost-sample counts.
  public var comments: [String]

  public init(
    samples: [ProfileSample], periodNanos: Int64, startTimeNanos: Int64, durationNanos: Int64,
    comments: [String] = []
  ) {
    self.samples = samples
    self.periodNanos = periodNanos
    self.startTimeNanos = startTimeNanos
    self.durationNanos = durationNanos
    self.comments = comments
  }

  public var totalCount: Int64 { samples.reduce(0) { $0 + $1.count } }
}
