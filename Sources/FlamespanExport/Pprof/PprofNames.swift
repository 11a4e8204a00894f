/// Label keys that Flamespan writes on every pprof sample and reads back.
enum PprofLabel {
  static let pid = "pid"
  static let tid = "tid"
  static let threadName = "thread_name"
  static let traceID = "trace_id"
  static let spanID = "span_id"
  static let spanName = "span_name"
}

/// The name pprof readers (and the kernel's perf) use for the kernel's single pseudo-mapping.
let kernelMappingName = "[kernel.kallsyms]"
