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

/// SIGINT and SIGTERM ask the recording to stop; it then writes its outputs as usual.
enum StopSignal {
  nonisolated(unsafe) private static var flag: sig_atomic_t = 0

  static func install() {
    let handler: @convention(c) (Int32) -> Void = { _ in StopSignal.flag = 1 }
    signal(SIGINT, handler)
    signal(SIGTERM, handler)
    // A parent may have started us with these blocked (Foundation's Process does, from a dispatch thread);
    // then Ctrl-C and `kill` would never reach the handler.
    var unblock = sigset_t()
    sigemptyset(&unblock)
    sigaddset(&unblock, SIGINT)
    sigaddset(&unblock, SIGTERM)
    sigprocmask(SIG_UNBLOCK, &unblock, nil)
  }

  static func requested() -> Bool { flag != 0 }
}
