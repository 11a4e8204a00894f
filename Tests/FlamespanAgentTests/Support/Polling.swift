import Foundation

/// Polls `condition` every 20 ms until it holds or `seconds` pass; returns whether it held.
/// (FlamespanTestSupport gains a shared waitUntil with the test-helper consolidation; this one goes then.)
func eventually(seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
  let deadline = Date().addingTimeInterval(seconds)
  while Date() < deadline {
    if try condition() { return true }
    usleep(20_000)
  }
  return try condition()
}
