import FlamespanModel
import FlamespanRecorder
import Foundation

/// Why the agent could not start or stopped early; the CLI prints it and exits with `exitCode`.
public struct AgentRunError: Error, CustomStringConvertible, Sendable {
  /// 64 (EX_USAGE) for a configuration the user must fix, 1 for anything else.
  public var exitCode: Int32
  public var description: String
}

/// The process's stop signals as the agent sees them: whether SIGINT or SIGTERM arrived, and how many
/// SIGHUPs were ignored. The CLI owns the signal handlers; the library only reads them.
public struct AgentStopSignals: Sendable {
  public var stopRequested: @Sendable () -> Bool
  public var ignoredHangUps: @Sendable () -> Int

  public init(
    stopRequested: @escaping @Sendable () -> Bool, ignoredHangUps: @escaping @Sendable () -> Int
  ) {
    self.stopRequested = stopRequested
    self.ignoredHangUps = ignoredHangUps
  }
}

/// Runs the agent until a stop signal: store, UI/API server, export queue and the continuous recorder.
public enum AgentRunner {
  public static func run(configuration: AgentConfiguration, signals: AgentStopSignals)
    throws(AgentRunError)
  {
    var store: SQLiteStore?
    if let directory = configuration.storeDirectory {
      do {
        store = try SQLiteStore(
          directory: directory, maximumAgeNanos: configuration.retentionNanos,
          maximumBytes: configuration.storeMaximumBytes)
      } catch {
        throw AgentRunError(exitCode: 1, description: "cannot use the store \(directory): \(error)")
      }
    }
    // A store directory of the earlier file format is imported beside the running agent, newest window
    // first: the UI answers from what is imported so far, and nothing is deleted before it is stored.
    if let store, LegacyStoreImport.hasLegacyFiles(in: store.directory) {
      Thread { LegacyStoreImport.run(into: store) { Log.info($0) } }.start()
    }
    let agent = Agent(configuration: configuration, store: store)
    var server: HTTPServer?
    if let address = configuration.listen {
      do {
        let counters = HTTPServerCounters()
        let api = AgentAPI(agent: agent, counters: counters)
        server = try HTTPServer(
          address: address, allowedHosts: configuration.allowedHosts,
          token: configuration.apiToken, counters: counters
        ) { api.handle($0) }
      } catch {
        throw AgentRunError(exitCode: 1, description: "\(error)")
      }
    }
    server?.start()
    if let address = configuration.listen, !AgentSettings.isLoopback(address),
      configuration.apiToken == nil
    {
      Log.info(
        "warning: --insecure-listen: the UI and API on \(address) are open to anyone who can reach it, without a token"
      )
    }
    if let requested = configuration.unsupportedProtocol {
      Log.info(
        "warning: OTLP protocol \(requested) was asked for, but this agent exports OTLP over HTTP "
          + "(http/protobuf) only (see docs/agent.md): point the endpoint at the collector's OTLP/HTTP "
          + "receiver (port 4318 by default), not its \(requested == "grpc" ? "gRPC one (4317)" : "JSON one")"
      )
    }
    agent.queue.start()
    Log.info(
      "sampling every CPU at \(configuration.frequency) Hz, windows of \(Double(configuration.exportIntervalNanos) / 1e9)s"
        + (configuration.profilesEndpoint.map { "; profiles to \($0)" } ?? "")
        + (configuration.tracesEndpoint.map { "; traces to \($0)" } ?? "")
        + (configuration.pyroscopeEndpoint.map { "; pyroscope at \($0)" } ?? "")
        + (store.map { "; store \($0.directory.path)" } ?? "")
        + (server.map {
          "; UI on http://\(configuration.listen!.split(separator: ":").dropLast().joined(separator: ":")):\($0.boundPort)/"
        } ?? ""))

    let stopRequest = StopClock(signals: signals)
    do {
      try agent.recorder.run(
        shouldStop: { stopRequest.check() },
        onWindow: { agent.handle($0) })
    } catch {
      _ = agent.queue.drain(until: KernelClock.monotonicNanos() + 2_000_000_000)
      server?.stop()
      throw AgentRunError(exitCode: 1, description: "\(error)")
    }
    if let reason = agent.recorder.statistics.l7Unavailable {
      Log.info("HTTP tracing was off: \(reason)")
    }
    // Five seconds from the signal to exit: what is left after the last window gets symbolized goes to
    // the final export attempts.
    let deadline = (stopRequest.requestedAt ?? KernelClock.monotonicNanos()) + 4_300_000_000
    let lost = agent.queue.drain(until: deadline)
    server?.stop()
    let exports = agent.queue.snapshot
    let recorded = agent.recorder.statistics
    Log.info(
      "stopped: \(recorded.windowsCut) windows cut, \(recorded.windowsDroppedBeforeSymbolization) dropped before symbolization; "
        + "\(exports.windowsExported) exported, \(exports.windowsDropped) dropped from the export queue, \(lost) unsent at exit; "
        + "BPF programs detached"
    )
  }
}

/// Remembers when SIGINT or SIGTERM first arrived, which starts the shutdown budget.
final class StopClock: @unchecked Sendable {
  private let signals: AgentStopSignals
  private(set) var requestedAt: UInt64?
  private var hangUpsLogged = 0

  init(signals: AgentStopSignals) { self.signals = signals }

  func check() -> Bool {
    if requestedAt != nil { return true }
    let hangUps = signals.ignoredHangUps()
    if hangUps != hangUpsLogged {
      hangUpsLogged = hangUps
      Log.info(
        "SIGHUP ignored: the configuration is read at start only; restart the agent to apply a change"
      )
    }
    guard signals.stopRequested() else { return false }
    requestedAt = KernelClock.monotonicNanos()
    return true
  }
}
