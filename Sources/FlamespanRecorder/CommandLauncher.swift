import Glibc

/// Starts the command given after `--` and reaps it. The child inherits our terminal, so Ctrl-C reaches
/// both: it stops the recording and the command alike.
final class CommandLauncher {
  let pid: pid_t
  private(set) var exitStatus: Int32?

  init(arguments: [String]) throws(RecordError) {
    guard let program = arguments.first else {
      throw RecordError(.launchFailed, message: "no command given after --")
    }
    var childPid: pid_t = 0
    let cArguments = arguments.map { strdup($0) } + [nil]
    defer { cArguments.forEach { free($0) } }
    // The command starts with no signal blocked and default dispositions, as from a shell, whatever
    // our own mask and handlers are.
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var empty = sigset_t()
    sigemptyset(&empty)
    posix_spawnattr_setsigmask(&attributes, &empty)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    sigaddset(&defaults, SIGINT)
    sigaddset(&defaults, SIGTERM)
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    let status = posix_spawnp(&childPid, program, nil, &attributes, cArguments, environ)
    guard status == 0 else {
      throw RecordError(
        .launchFailed, errno: status,
        message: "cannot start `\(program)` (is it installed and on PATH?)")
    }
    pid = childPid
  }

  /// True once the child has exited; reaps it without blocking.
  func hasExited() -> Bool {
    if exitStatus != nil { return true }
    var status: Int32 = 0
    let result = waitpid(pid, &status, WNOHANG)
    guard result == pid else { return result < 0 }
    exitStatus = status
    return true
  }

  /// Waits for the child after the recording stopped, so no zombie is left behind.
  func waitForExit() {
    while !hasExited() { usleep(20_000) }
  }
}
