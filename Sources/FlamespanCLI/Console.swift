import Glibc

/// Messages for people go to stderr, so stdout stays clean for data (`symbolize` writes JSON there).
enum Console {
  static func error(_ text: String) {
    fputs(text + "\n", stderr)
  }

  /// A single self-overwriting status line on a terminal; nil clears it.
  static func progress(_ text: String?) {
    fputs("\r\u{1B}[2K" + (text ?? ""), stderr)
    fflush(stderr)
  }
}

/// SIGINT and SIGTERM ask the recording to stop; it then writes its outputs as usual.
enum StopSignal {
  nonisolated(unsafe) private static var flag: sig_atomic_t = 0

  static func install() {
    let handler: @convention(c) (Int32) -> Void = { _ in StopSignal.flag = 1 }
    signal(SIGINT, handler)
    signal(SIGTERM, handler)
  }

  static func requested() -> Bool { flag != 0 }
}
