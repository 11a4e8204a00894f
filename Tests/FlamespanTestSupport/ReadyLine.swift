import Foundation

/// Servers started by tests print a line once they accept connections (the samples print `listening PORT`):
/// tests wait for it in the file their stdout goes to, rather than sleeping.
public enum ReadyLine {
  /// The first line of `file` that starts with `prefix`, once written; nil if `process` exits or `seconds`
  /// pass first.
  public static func wait(
    in file: URL, startingWith prefix: String, from process: Process, seconds: TimeInterval = 30
  ) -> String? {
    let deadline = Date().addingTimeInterval(seconds)
    while true {
      let running = process.isRunning
      let text = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
      // Only whole lines: a line still being written could show half a port number.
      let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
      if let line = lines.first(where: { $0.hasPrefix(prefix) }) {
        return String(line)
      }
      if !running || Date() >= deadline { return nil }
      usleep(20_000)
    }
  }

  /// The port in a `listening PORT` line.
  public static func port(in file: URL, from process: Process, seconds: TimeInterval = 30) -> Int? {
    wait(in: file, startingWith: "listening ", from: process, seconds: seconds).flatMap {
      Int($0.dropFirst("listening ".count))
    }
  }
}
