/// Attribute keys Flamespan writes into OTLP profiles and spans, from the OpenTelemetry semantic conventions
/// wherever one exists.
public enum OTLPAttribute {
  public static let hostName = "host.name"
  public static let serviceName = "service.name"
  public static let processID = "process.pid"
  public static let threadID = "thread.id"
  public static let threadName = "thread.name"
  /// The profiles "Mappings" specification requires a build id attribute on every mapping that has one.
  public static let gnuBuildID = "process.executable.build_id.gnu"
  /// "kernel", "native", or the runtime ("go", "v8js", "jvm", …) on each location, as the OpenTelemetry
  /// eBPF profiler marks them.
  public static let frameType = "profile.frame.type"
  /// Free-text notes (lost samples and the like), the semantic-convention home of pprof comments.
  public static let comment = "pprof.profile.comment"
  /// A Link carries only ids; the span's name has no semantic-convention key, so it lives under ours.
  public static let spanName = "flamespan.span.name"
  /// On a span: the CPU samples taken on its thread while it was active (the agent counts them).
  public static let spanCPUSamples = "flamespan.cpu.samples"
}
