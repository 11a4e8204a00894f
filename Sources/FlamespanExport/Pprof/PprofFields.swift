/// Field numbers of `perftools.profiles` (profile.proto), named so encoder and decoder share one truth.
enum PprofField {
  enum Profile {
    static let sampleType = 1
    static let sample = 2
    static let mapping = 3
    static let location = 4
    static let function = 5
    static let stringTable = 6
    static let timeNanos = 9
    static let durationNanos = 10
    static let periodType = 11
    static let period = 12
    static let comment = 13
    static let defaultSampleType = 14
  }
  enum ValueType {
    static let type = 1
    static let unit = 2
  }
  enum Sample {
    static let locationID = 1
    static let value = 2
    static let label = 3
  }
  enum Label {
    static let key = 1
    static let str = 2
    static let num = 3
    static let numUnit = 4
  }
  enum Mapping {
    static let id = 1
    static let memoryStart = 2
    static let memoryLimit = 3
    static let fileOffset = 4
    static let filename = 5
    static let buildID = 6
    static let hasFunctions = 7
    static let hasFilenames = 8
    static let hasLineNumbers = 9
    static let hasInlineFrames = 10
  }
  enum Location {
    static let id = 1
    static let mappingID = 2
    static let address = 3
    static let line = 4
  }
  enum Line {
    static let functionID = 1
    static let line = 2
    static let column = 3
  }
  enum Function {
    static let id = 1
    static let name = 2
    static let systemName = 3
    static let filename = 4
    static let startLine = 5
  }
}

/// Label keys and sample types that Flamespan writes and reads back.
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
