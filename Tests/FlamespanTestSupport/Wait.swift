import Foundation

/// Polls `condition` every 10 ms until it holds or `seconds` pass; true if it held. Tests wait on the
/// state they need rather than sleeping a fixed time, which is either too long or, on a loaded machine,
/// too short.
public func waitUntil(seconds: TimeInterval, _ condition: () throws -> Bool) rethrows -> Bool {
  let deadline = Date().addingTimeInterval(seconds)
  while Date() < deadline {
    if try condition() { return true }
    usleep(10_000)
  }
  return try condition()
}
