import FlamespanBPF
import FlamespanModel

/// Counts identical raw samples as they arrive, so memory grows with distinct stacks, not with time.
/// Symbolization happens once per distinct address at the end.
struct SampleAggregator {
  struct Key: Hashable {
    var pid: Int32
    var tid: Int32
    var threadName: String
    var kernelStack: [UInt64]
    var userStack: [UInt64]
    var userStackErrno: Int32?
    /// DWARF mode: why the user stack is incomplete, shown as a marker frame after it.
    var userStackMarker: String?
    var span: SpanContext?
    /// The sample's interpreter frames (named when the sample arrived) and where they go.
    var interpreterSplice: InterpreterSplice?
    /// Bumped at each exec of the process: the same addresses mean other code after an exec.
    var image: Int
  }

  struct Tally {
    var count: Int64
    /// When the first sample of this key was taken: which maps snapshot resolves it.
    var firstTimeNanos: UInt64
  }

  private(set) var tallies: [Key: Tally] = [:]
  private(set) var sampleCount = 0
  private(set) var processes: Set<Int32> = []
  private var images: [Int32: Int] = [:]

  mutating func add(
    _ sample: RawSample, count: Int64 = 1, userStackMarker: String? = nil,
    interpreterSplice: InterpreterSplice? = nil
  ) {
    sampleCount += Int(count)
    processes.insert(sample.pid)
    let key = Key(
      pid: sample.pid, tid: sample.tid, threadName: sample.threadName,
      kernelStack: sample.kernelStack,
      userStack: sample.userStack, userStackErrno: sample.userStackErrno,
      userStackMarker: userStackMarker, span: sample.span, interpreterSplice: interpreterSplice,
      image: images[sample.pid, default: 0])
    tallies[key, default: Tally(count: 0, firstTimeNanos: sample.timeNanos)].count += count
  }

  mutating func noteExec(pid: Int32) {
    images[pid, default: 0] += 1
  }

  /// Within one image mappings only grow (the loader and dlopen add code), so the newest snapshot taken
  /// during an image resolves every sample of it, including those taken before the loader finished.
  mutating func noteSnapshot(pid: Int32, time: UInt64) {
    newestSnapshot[ImageKey(pid: pid, image: images[pid, default: 0])] = time
  }

  /// When to look up the mappings of the samples under `key`.
  func resolutionTime(for key: Key, tally: Tally) -> UInt64 {
    max(newestSnapshot[ImageKey(pid: key.pid, image: key.image)] ?? 0, tally.firstTimeNanos)
  }

  private struct ImageKey: Hashable {
    var pid: Int32
    var image: Int
  }

  private var newestSnapshot: [ImageKey: UInt64] = [:]
}
