import FlamespanBPF
import FlamespanModel
import FlamespanProcess
import FlamespanRuntimes

/// Where a sample's interpreter frames go in its native stack. The eval loop runs one group of
/// interpreter frames per native call, so the k-th group (from the leaf) takes the place of the k-th
/// eval-loop frame; groups with no eval-loop frame left to take (the native unwind stopped early) go at
/// the root end, above the native frames found.
struct InterpreterSplice: Hashable {
  /// Indices into the user stack (leaf first) of the eval-loop frames.
  var evalLoopIndices: [Int]
  /// Innermost group first; each group innermost frame first.
  var groups: [[InterpreterFrame]]
}

/// One interpreter process over a recording, for the summary and the agent's metrics.
public struct InterpreterProcessSummary: Sendable, Equatable {
  /// The thread name of its first sample.
  public var name: String
  /// "CPython 3.11.2".
  public var version: String
  /// Whether the sampler walks its frames (its layout was published).
  public var walked = false
  /// Samples whose native stack ran through the eval loop.
  public var samplesInEvalLoop = 0
  /// Of those, the samples that carried no interpreter frames: taken before the layout was published,
  /// or on a thread whose state could not be read.
  public var evalLoopSamplesWithoutFrames = 0
  /// Frame chains longer than the sampler follows (their outermost frames are missing).
  public var truncatedStacks = 0
  /// Walks stopped by a failed read.
  public var failedWalks = 0
  /// Frames that could not be named: freed or changed code objects, torn reads.
  public var unknownFrames = 0
  /// Why the process keeps native stacks only (an unknown version), or why publishing failed.
  public var problem: String?

  public init(name: String, version: String) {
    self.name = name
    self.version = version
  }
}

/// The interpreter half of unwinding, on the sampling thread: publishes each interpreter process's walk
/// layout to the sampler as soon as its plug-in has one, names each sample's interpreter frames as the
/// sample arrives (its code objects may be freed later), and finds the native eval-loop frames they run
/// in.
struct InterpreterStacks {
  /// Writes a process's layout into the sampler, or withdraws it (nil); returns why it failed, or nil.
  typealias Publisher = (_ pid: Int32, _ layout: CPythonWalkLayout?) -> String?

  var publisher: Publisher?
  private var published: [Int32: CPythonWalkLayout] = [:]
  private var lastRefresh: [Int32: (view: ObjectIdentifier, time: UInt64)] = [:]
  private var refused: [Int32: CPythonWalkLayout] = [:]
  private(set) var processes: [Int32: InterpreterProcessSummary] = [:]
  /// Since the start, over every process (the per-process summaries of exited ones are let go).
  private(set) var totalUnknownFrames = 0
  private(set) var totalEvalLoopSamplesWithoutFrames = 0
  /// A process whose interpreter is not initialized yet is asked again this often while its samples
  /// arrive: its registry refresh (every 250 ms) would leave a quarter second of frames unnamed.
  static let layoutRetryNanos: UInt64 = 5_000_000
  static let processLimit = 1024

  init(publisher: Publisher?) {
    self.publisher = publisher
  }

  mutating func splice(
    _ sample: RawSample, userStack: [UInt64], maps: ProcessMaps, views: [any RuntimeProcess]
  ) -> InterpreterSplice? {
    guard let view = views.lazy.compactMap({ $0 as? any InterpreterRuntimeProcess }).first else {
      return nil
    }
    let pid = sample.pid
    var summary =
      processes[pid]
      ?? InterpreterProcessSummary(name: sample.threadName, version: view.versionDescription)
    defer { processes[pid] = summary }
    publishIfNeeded(view, pid: pid, now: sample.timeNanos, summary: &summary)

    var evalLoopIndices: [Int] = []
    for (index, address) in userStack.enumerated() {
      let lookup = index == 0 || address == 0 ? address : address &- 1
      if view.isEvalLoop(address: lookup, mapping: maps.mapping(containing: lookup)) {
        evalLoopIndices.append(index)
      }
    }
    if !evalLoopIndices.isEmpty { summary.samplesInEvalLoop += 1 }
    switch sample.interpreterStack?.status {
    case .truncated: summary.truncatedStacks += 1
    case .readFailed: summary.failedWalks += 1
    case .complete, nil: break
    }
    guard let stack = sample.interpreterStack, !stack.frames.isEmpty else {
      if !evalLoopIndices.isEmpty {
        summary.evalLoopSamplesWithoutFrames += 1
        totalEvalLoopSamplesWithoutFrames += 1
      }
      return nil
    }
    // The registry attaches a new view when the process's mappings change (a library loads), and a new
    // view counts from zero: add what this call named unknown.
    let unknownBefore = view.unknownFrames
    let frames = view.name(stack)
    let unknown = max(view.unknownFrames - unknownBefore, 0)
    summary.unknownFrames += unknown
    totalUnknownFrames += unknown
    var groups: [[InterpreterFrame]] = []
    var group: [InterpreterFrame] = []
    for frame in frames {
      group.append(frame)
      if frame.endsEvalGroup {
        groups.append(group)
        group = []
      }
    }
    if !group.isEmpty { groups.append(group) }
    guard !groups.isEmpty else { return nil }
    return InterpreterSplice(evalLoopIndices: evalLoopIndices, groups: groups)
  }

  private mutating func publishIfNeeded(
    _ view: any InterpreterRuntimeProcess, pid: Int32, now: UInt64,
    summary: inout InterpreterProcessSummary
  ) {
    // A view the registry just attached (at exec, or when a library loaded) knows nothing until its first
    // refresh, so it gets one at once; one still waiting for its interpreter is asked again every few
    // milliseconds.
    let identity = ObjectIdentifier(view)
    if view.samplerLayout == nil,
      lastRefresh[pid]?.view != identity
        || now &- (lastRefresh[pid]?.time ?? 0) >= Self.layoutRetryNanos
    {
      lastRefresh[pid] = (identity, now)
      view.refresh()
    }
    guard let layout = view.samplerLayout else {
      summary.problem = view.problems
      return
    }
    // A layout the sampler refused (its map full) is not offered again at every sample of the process:
    // that would be a system call per sample. A new layout (after an exec) is.
    guard let publisher, published[pid] != layout, refused[pid] != layout else { return }
    if let failure = publisher(pid, layout) {
      refused[pid] = layout
      summary.problem = failure
      return
    }
    published[pid] = layout
    summary.walked = true
    summary.version = view.versionDescription
    summary.problem = nil
  }

  /// Publishes the layout of a process known before its first sample (`record --pid`), so that sample
  /// already carries its interpreter frames.
  mutating func prepare(pid: Int32, name: String, views: [any RuntimeProcess], now: UInt64) {
    guard let view = views.lazy.compactMap({ $0 as? any InterpreterRuntimeProcess }).first else {
      return
    }
    var summary =
      processes[pid] ?? InterpreterProcessSummary(name: name, version: view.versionDescription)
    publishIfNeeded(view, pid: pid, now: now, summary: &summary)
    processes[pid] = summary
  }

  /// Withdraws an exited (or exec'd) process's layout; its summary stays.
  mutating func forget(pid: Int32) {
    lastRefresh[pid] = nil
    refused[pid] = nil
    // An always-on agent sees interpreters come and go all day; a recording keeps them all for its
    // summary, up to this many.
    if processes.count > Self.processLimit { processes[pid] = nil }
    guard published.removeValue(forKey: pid) != nil else { return }
    _ = publisher?(pid, nil)
  }
}

extension InterpreterSplice {
  /// `user` (resolved native locations, leaf first, one per user-stack address) with the interpreter
  /// frames in place of the eval-loop frames that ran them.
  func merged(into user: [ResolvedLocation]) -> [ResolvedLocation] {
    var replacements: [Int: [ResolvedLocation]] = [:]
    var leftover: [ResolvedLocation] = []
    for (position, group) in groups.enumerated() {
      let locations = group.map(Self.location)
      if position < evalLoopIndices.count, evalLoopIndices[position] < user.count {
        replacements[evalLoopIndices[position]] = locations
      } else {
        leftover += locations
      }
    }
    var stack: [ResolvedLocation] = []
    stack.reserveCapacity(user.count + groups.reduce(0) { $0 + $1.count })
    for (index, location) in user.enumerated() {
      if let replacement = replacements[index] {
        stack += replacement
      } else {
        stack.append(location)
      }
    }
    return stack + leftover
  }

  /// An interpreter frame has no native address or mapping: it is its function, file and line.
  static func location(_ frame: InterpreterFrame) -> ResolvedLocation {
    ResolvedLocation(
      address: 0, mapping: nil, frames: [frame.frame],
      unknownReason: frame.isUnknown ? frame.frame.function : nil, frameType: .cpython)
  }
}

extension InterpreterStacks {
  /// Publishes layouts into `sampler`'s per-process interpreter map.
  static func publisher(to sampler: CPUSampler) -> Publisher {
    { pid, layout in
      guard let layout else {
        sampler.withdrawInterpreter(pid: pid)
        return nil
      }
      do {
        try sampler.publishInterpreter(pid: pid, layout: layout)
        return nil
      } catch {
        return "its frames are not walked: \(error)"
      }
    }
  }
}
