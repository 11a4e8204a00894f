import FlamespanRecorder
import Glibc

/// Messages for people go to stderr, so stdout stays clean for data (`symbolize` writes JSON there).
enum Console {
  static func error(_ text: String) {
    write(text + "\n")
  }

  /// A single self-overwriting status line on a terminal; nil clears it.
  static func progress(_ text: String?) {
    write("\r\u{1B}[2K" + (text ?? ""))
  }

  /// Unbuffered, so progress and errors show at once and in order.
  private static func write(_ text: String) {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
      let written = bytes.withUnsafeBytes { Glibc.write(STDERR_FILENO, $0.baseAddress, $0.count) }
      if written < 0 && errno == EINTR { continue }
      guard written > 0 else { return }
      bytes = bytes.dropFirst(written)
    }
  }
}

/// SIGINT and SIGTERM (and, for `record`, SIGHUP) ask the recording to stop; it then writes its outputs
/// as usual. The first such signal is remembered, to be forwarded to a launched command; a second SIGINT
/// or SIGTERM forces the stop. The agent ignores SIGHUP and counts it, for a log line.
enum StopSignal {
  nonisolated(unsafe) private static var first: sig_atomic_t = 0
  nonisolated(unsafe) private static var forced: sig_atomic_t = 0
  nonisolated(unsafe) private static var hangUps: sig_atomic_t = 0

  /// What SIGHUP does: stop like SIGINT (`record`: an SSH session that ends stops the recording and
  /// still writes its outputs), or nothing but a count (the agent).
  enum HangUp { case stop, ignore }

  static func install(hangUp: HangUp) {
    let stop: @convention(c) (Int32) -> Void = { signal in
      if StopSignal.first == 0 {
        StopSignal.first = signal
      } else if signal == SIGINT || signal == SIGTERM {
        StopSignal.forced = 1
      }
    }
    let count: @convention(c) (Int32) -> Void = { _ in StopSignal.hangUps &+= 1 }
    signal(SIGINT, stop)
    signal(SIGTERM, stop)
    signal(SIGHUP, hangUp == .stop ? stop : count)
    // Outputs are files: a closed stderr pipe (the terminal's `| tee` gone with the session) must not
    // kill us before they are written.
    signal(SIGPIPE, SIG_IGN)
    // A parent may have started us with these blocked (Foundation's Process does, from a dispatch thread);
    // then Ctrl-C and `kill` would never reach the handler.
    var unblock = sigset_t()
    sigemptyset(&unblock)
    for signal in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&unblock, signal) }
    sigprocmask(SIG_UNBLOCK, &unblock, nil)
  }

  static func requested() -> Bool { first != 0 }

  /// The first stop signal, and whether a second one forced the stop.
  static func request() -> StopRequest {
    StopRequest(signal: first == 0 ? nil : first, force: forced != 0)
  }

  /// SIGHUPs ignored so far.
  static var ignoredHangUps: Int { Int(hangUps) }
}
