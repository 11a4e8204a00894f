import FlamespanBPF
import FlamespanModel
import FlamespanRuntimes

public struct RecordingSummary: Sendable {
  public var durationNanos: UInt64
  public var frequency: Int
  public var sampledCPUs: [Int]
  /// Samples that reached user space.
  public var samplesReceived: Int
  public var counters: SamplerCounters
  /// Ring-buffer records we could not decode.
  public var malformedRecords: Int
  public var processes: Int
  public var mapsSnapshots: Int
  public var processesGoneBeforeMaps: Int
  public var commandExitStatus: Int32?
  /// Stack-copy modes (auto, dwarf) only.
  public var unwinding: UnwindingSummary? = nil
  /// nil when HTTP tracing was off or could not start.
  public var http: HTTPTracingSummary? = nil
  /// Things the user should know that did not stop the recording (HTTP tracing unavailable, say).
  public var warnings: [String] = []

  /// Samples that were taken in the kernel but are not in the profile.
  public var lostSamples: UInt64 { counters.lostSamples + UInt64(malformedRecords) }

  /// What one fully busy CPU yields over the recording: frequency × duration.
  public var expectedSamplesPerBusyCPU: Double {
    Double(frequency) * Double(durationNanos) / 1e9
  }

  /// Carried into the profile so the numbers travel with it.
  public var comments: [String] {
    var lines = [
      "flamespan: \(samplesReceived) samples at \(frequency) Hz over \(String(format: "%.2f", Double(durationNanos) / 1e9)) s on CPUs \(sampledCPUs.map(String.init).joined(separator: ","))",
      "lost samples: \(lostSamples) (ring buffer full: \(counters.ringBufferFull), undecodable: \(malformedRecords)); kernel stack errors: \(counters.kernelStackErrors); user stack errors: \(counters.userStackErrors)",
    ]
    if let unwinding {
      lines.append(unwinding.text)
      lines += unwinding.interpreterLines.map { "python: " + $0 }
    }
    if let http, http.spans > 0 || http.eventsLost > 0 { lines.append(http.text) }
    return lines
  }
}

extension HTTPTracingSummary {
  /// One line for the end-of-run summary and the profile's comments.
  public var text: String {
    "HTTP spans: \(spans) captured (\(serverSpans) server, \(clientSpans) client); L7 events lost: \(eventsLost); "
      + "rejected: \(rejectedExchanges); non-HTTP connections: \(counters.notHTTP); bad traceparent headers: \(counters.rejectedTraceparents); "
      + "heads past 8 KiB: \(counters.headsTooLong); pipelined requests not followed: \(counters.pipelinedNotFollowed); request lines cut: \(counters.requestLinesCut)"
  }
}

/// What stack-copy unwinding (auto or dwarf) did over a recording.
public struct UnwindingSummary: Sendable {
  public var mode: UserStackUnwinding
  public var stacksUnwound: Int
  /// Stacks that reached their outermost frame.
  public var stacksComplete: Int
  /// Stacks continued on the kernel's frame-pointer walk past the point where the copy's unwind stopped.
  public var framePointerSplices: Int
  /// User-space CPU time spent unwinding.
  public var cpuNanos: UInt64
  public var filesParsed: Int
  /// Samples whose user stack could not be read at all at the stack pointer.
  public var copyFailures: UInt64
  /// Per process: stacks, and why those that stopped early stopped.
  public var processes: [Int32: ProcessStackStops] = [:]
  /// Per process: what its runtimes could not use (malformed perf-map lines, say).
  public var runtimeProblems: [Int32: [String]] = [:]
  /// Per process running an interpreter (CPython): its version and how its frames were read.
  public var interpreters: [Int32: InterpreterProcessSummary] = [:]
  /// Interpreter frames that could not be named, over every process since the start.
  public var interpreterUnknownFrames = 0
  /// Samples in an interpreter's eval loop that carried none of its frames, over every process.
  public var interpreterSamplesWithoutFrames = 0

  /// Stacks that stopped early, by reason, over every process.
  public var stopped: [StackStopReason: Int] {
    processes.values.reduce(into: [:]) { total, process in
      total.merge(process.stopped, uniquingKeysWith: +)
    }
  }

  public var text: String {
    let percent = stacksUnwound == 0 ? 100 : 100 * Double(stacksComplete) / Double(stacksUnwound)
    let perStack = stacksUnwound == 0 ? 0 : Double(cpuNanos) / Double(stacksUnwound) / 1000
    var text =
      "\(mode.rawValue) unwinding: \(stacksUnwound) stacks, \(String(format: "%.1f", percent))% complete, \(framePointerSplices) continued on frame pointers, \(copyFailures) not copied; \(String(format: "%.1f", perStack)) µs CPU per stack, \(filesParsed) files parsed"
    let stoppedEarly = stopped
    if !stoppedEarly.isEmpty {
      text +=
        "; stopped early: "
        + stoppedEarly.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key.rawValue)" }.joined(
          separator: ", ")
    }
    return text
  }

  /// One line per interpreter process (CPython): its version, and how many of its samples in the eval
  /// loop carry interpreter frames, or why none do.
  public var interpreterLines: [String] {
    interpreters.sorted { $0.key < $1.key }.map { pid, process in
      let who = process.name.isEmpty ? "pid \(pid)" : "\(process.name) (pid \(pid))"
      guard process.walked else {
        return
          "\(who): \(process.version): \(process.problem ?? "frames not walked"); native frames only"
      }
      let named = process.samplesInEvalLoop - process.evalLoopSamplesWithoutFrames
      let share =
        process.samplesInEvalLoop == 0
        ? 100 : 100 * Double(named) / Double(process.samplesInEvalLoop)
      return
        "\(who): \(process.version): \(named) of \(process.samplesInEvalLoop) samples in the interpreter carry Python frames (\(String(format: "%.1f", share))%); \(process.truncatedStacks) chains truncated, \(process.failedWalks) walks failed, \(process.unknownFrames) unknown frames"
    }
  }

  /// One line per runtime problem, then per process whose stacks stopped early (worst share first, at
  /// most `limit`).
  public func processLines(limit: Int = 5) -> [String] {
    let incomplete = processes.filter { $0.value.stoppedTotal > 0 && $0.value.stacks > 0 }
    let ranked = incomplete.sorted {
      let left = Double($0.value.stoppedTotal) / Double($0.value.stacks)
      let right = Double($1.value.stoppedTotal) / Double($1.value.stacks)
      return left != right ? left > right : $0.key < $1.key
    }
    let problems = runtimeProblems.sorted { $0.key < $1.key }.flatMap { pid, texts in
      texts.map { "pid \(pid): \($0)" }
    }
    return problems
      + ranked.prefix(limit).map { pid, process in
        let share = 100 * Double(process.stoppedTotal) / Double(process.stacks)
        let reasons = process.stopped.sorted { $0.key < $1.key }.map {
          "\($0.key.rawValue) \(String(format: "%.1f", 100 * Double($0.value) / Double(process.stacks)))%"
        }
        return
          "\(process.name.isEmpty ? "pid \(pid)" : "\(process.name) (pid \(pid))"): \(String(format: "%.1f", share))% of \(process.stacks) stacks stopped early (\(reasons.joined(separator: ", ")))"
      }
  }
}

/// A function's share of the samples, for the end-of-run summary.
public struct FunctionShare: Sendable, Equatable {
  public var name: String
  /// Samples where it was the leaf function.
  public var selfCount: Int64
  /// Samples where it was anywhere on the stack.
  public var totalCount: Int64
}

extension Profile {
  /// The functions with the most self samples. Inline frames count under their real function's name too,
  /// as perf reports them.
  public func topFunctions(limit: Int) -> [FunctionShare] {
    var selfCounts: [String: Int64] = [:]
    var totalCounts: [String: Int64] = [:]
    for sample in samples {
      guard let leaf = sample.stack.first else { continue }
      selfCounts[leaf.displayName, default: 0] += sample.count
      var seen: Set<String> = []
      for location in sample.stack where seen.insert(location.displayName).inserted {
        totalCounts[location.displayName, default: 0] += sample.count
      }
    }
    return
      selfCounts
      .map {
        FunctionShare(
          name: $0.key, selfCount: $0.value, totalCount: totalCounts[$0.key] ?? $0.value)
      }
      .sorted { ($0.selfCount, $1.name) > ($1.selfCount, $0.name) }
      .prefix(limit)
      .map { $0 }
  }
}
