import Foundation

/// Polls `condition` every `interval` seconds (10 ms unless told) until it holds or `seconds` pass;
/// true if it held. Tests wait on the state they need rather than sleeping a fixed time, which is
/// either too long or, on a loaded machine, too short. A condition that starts a program (curl) or
/// parses a growing log asks for a longer interval, so that the wait does not itself load the machine.
public func waitUntil(
  seconds: TimeInterval, every interval: TimeInterval = 0.01, _ condition: () throws -> Bool
) rethrows -> Bool {
  let deadline = Date().addingTimeInterval(seconds)
  while Date() < deadline {
    if try condition() { return true }
    usleep(useconds_t(interval * 1_000_000))
  }
  return try condition()
}
