import FlamespanTestSupport
import Testing

/// What a real-BPF test needs first: BPF must load, and `tools` must be installed. Where something is
/// missing the test is skipped with the reason printed; under CI, which runs as root with every tool,
/// that is a failure.
func realBPFTestCanRun(
  _ test: String, needing tools: [String] = [], sourceLocation: SourceLocation = #_sourceLocation
) -> Bool {
  guard TestEnvironment.bpfAvailable(for: test) else {
    #expect(
      !TestEnvironment.isCI, "CI runs as root, where BPF must work", sourceLocation: sourceLocation)
    return false
  }
  for tool in tools where !TestEnvironment.toolAvailable(tool, for: test) {
    #expect(!TestEnvironment.isCI, "CI installs \(tool)", sourceLocation: sourceLocation)
    return false
  }
  return true
}
