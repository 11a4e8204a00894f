import FlamespanTestSupport
import Foundation
import Testing

/// SIGHUP (a closed SSH session, `systemctl reload`) must not take the agent down: it is ignored, with a
/// log line saying so, and SIGTERM still stops it cleanly.
@Suite struct AgentSignalTests {
  @Test(.requires(.bpf)) func hangUpIsIgnoredWithALogLine() throws {
    let directory = try TestEnvironment.temporaryDirectory("agent-sighup")
    defer { try? FileManager.default.removeItem(at: directory) }
    let agent = try BackgroundProcess(
      [
        TestEnvironment.flamespanBinary, "agent", "--export-interval", "1s", "--store", "",
        "--listen", "off",
        "--trace-http", "false",
      ], logs: directory, label: "agent")
    defer { _ = agent.stop(signal: SIGKILL) }
    let sampling = waitUntil(seconds: 60, every: 0.2) {
      agent.stderr.contains("sampling every CPU")
    }
    #expect(sampling, "the agent never started: \(agent.stderr)")
    kill(agent.pid, SIGHUP)
    let logged = waitUntil(seconds: 10, every: 0.2) { agent.stderr.contains("SIGHUP ignored") }
    #expect(logged, "no log line for SIGHUP: \(agent.stderr)")
    #expect(agent.process.isRunning, "SIGHUP stopped the agent: \(agent.stderr)")
    let (status, _) = agent.stop(signal: SIGTERM, within: 20)
    #expect(status == 0, "\(agent.stderr)")
  }
}
