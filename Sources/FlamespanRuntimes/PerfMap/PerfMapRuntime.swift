import FlamespanModel
import FlamespanProcess

/// JIT code named by the perf map its runtime writes: Node `--perf-basic-prof`, Java
/// (`jcmd PID Compiler.perfmap`, `-XX:+DumpPerfMapAtExit`), Python 3.12 `-X perf`, .NET
/// `DOTNET_PerfMapEnabled=1`. They write `/tmp/perf-PID.map` with the pid the process sees in its own
/// pid namespace, read here through `/proc/PID/root` so that maps inside containers are found.
///
/// `attach` returns nil while the file does not exist: a process whose JIT has not written its map yet
/// is picked up when the host attaches again after the process's mappings change (a JIT maps new code
/// as it compiles, so that comes soon). Once attached, `refresh()` follows the file as it grows.
/// Attaching again to a pid whose process view is still alive returns that view, caught up, rather than
/// reading the map again, also once the file (or the process) is gone.
public final class PerfMapRuntime: Runtime {
  public let name = "perf-map"
  public let maxEntries: Int
  private var attached: [Int32: WeakProcess] = [:]

  public init(maxEntries: Int = PerfMap.defaultMaxEntries) {
    self.maxEntries = maxEntries
  }

  public func attach(pid: Int32, maps: ProcessMaps) -> RuntimeProcess? {
    // A view still in use keeps what it read even when the file has gone: a process that exited before
    // the recording is resolved (/proc/PID/root with it) still has its samples' JIT frames to name.
    if let existing = attached[pid]?.process {
      existing.refresh()
      return existing
    }
    guard let namespacePID = ProcFiles.namespacePID(of: pid) else { return nil }
    let path = ProcFiles.perfMapPath(pid: pid, namespacePID: namespacePID)
    let perfMap = PerfMap(path: path, maxEntries: maxEntries)
    guard perfMap.fileExists else { return nil }
    let frameType = PerfMapNames.frameType(executableName: ProcFiles.executableName(of: pid))
    let process = PerfMapProcess(pid: pid, perfMap: perfMap, frameType: frameType)
    process.refresh()
    attached = attached.filter { $0.value.process != nil }
    attached[pid] = WeakProcess(process: process)
    return process
  }

  private struct WeakProcess {
    weak var process: PerfMapProcess?
  }
}

/// The counters the summary shows for one process's perf map.
public struct PerfMapCounters: Sendable, Hashable {
  /// Entries held.
  public var entries: Int
  /// Lines skipped because they did not parse.
  public var badLines: Int
  /// Entries refused past the cap.
  public var droppedEntries: Int

  public init(entries: Int, badLines: Int, droppedEntries: Int) {
    self.entries = entries
    self.badLines = badLines
    self.droppedEntries = droppedEntries
  }
}

/// One process's perf map, as the unwinder and the symbolizer use it.
public final class PerfMapProcess: RuntimeProcess {
  public var runtimeName: String { "perf-map" }
  public let pid: Int32
  public let perfMap: PerfMap
  /// The kind of code the process's JIT writes, from its executable's name.
  public let frameType: FrameType

  public init(pid: Int32, perfMap: PerfMap, frameType: FrameType) {
    self.pid = pid
    self.perfMap = perfMap
    self.frameType = frameType
  }

  /// Lines of the map that could not be used, for the summary; nil when every line was.
  public var problems: String? {
    let counters = counters
    guard counters.badLines > 0 || counters.droppedEntries > 0 else { return nil }
    return
      "perf map \(perfMap.path): \(counters.badLines) malformed lines skipped, \(counters.droppedEntries) entries over the cap"
  }

  public var counters: PerfMapCounters {
    PerfMapCounters(
      entries: perfMap.entryCount, badLines: perfMap.badLines,
      droppedEntries: perfMap.droppedEntries)
  }

  /// Code in anonymous executable memory, or code the map names (also outside the snapshot's mappings:
  /// the JIT mapped it since).
  public func owns(pc: UInt64, mapping: Mapping?) -> Bool {
    // Outside every known mapping only what the map names: a bad frame pointer's "return address"
    // must not be taken for JIT code and walked on.
    if mapping?.kind == .anonymous { return true }
    return perfMap.covers(pc)
  }

  /// JITs keep frame pointers, so the caller is one step up the rbp chain. A frame without a chain is
  /// reported as code without CFI when the map names it, and as unnamed JIT code when it does not.
  public func step(_ frame: FrameRegisters, memory: StackMemory) -> RuntimeStep {
    let named = perfMap.covers(frame.lookupPC)
    return FramePointerStep.step(
      frame, memory: memory, unchainedReason: named ? .noCFI : .jitWithoutMap)
  }

  public func symbolize(address: UInt64, mapping: Mapping?) -> RuntimeSymbol? {
    guard let name = perfMap.name(at: address) else { return nil }
    return RuntimeSymbol(
      frames: [PerfMapNames.frame(name: name, frameType: frameType)], frameType: frameType,
      isJIT: true)
  }

  public func refresh() {
    perfMap.refresh()
  }
}
