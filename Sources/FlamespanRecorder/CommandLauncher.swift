import Glibc

/// Starts the command given after `--` and reaps it. The child inherits our terminal, so Ctrl-C reaches
/// both: it stops the recording and the command alike.
///
/// The command is held at a gate until `release()`: a shell waits on a pipe and then execs it. Otherwise it
/// could fork helpers (as `/usr/bin/time` does) before its pid joins the sampler's filter, and those
/// children would never be followed.
final class CommandLauncher {
  let pid: pid_t
  private(set) var exitStatus: Int32?
  private var gate: Int32

  /// The shell's whole job: wait for the byte that opens the gate, drop the pipe, become the command.
  private static let gateScript = "read -r _ <&3; exec 3<&-; exec \"$@\""

  init(arguments: [String]) throws(RecordError) {
    guard let program = arguments.first else {
      throw RecordError(.launchFailed, message: "no command given after --")
    }
    guard Self.isRunnable(program) else {
      throw RecordError(
        .launchFailed, errno: ENOENT,
        message: "cannot start `\(program)` (is it installed and on PATH?)")
    }
    var pipeEnds: [Int32] = [0, 0]
    guard pipe(&pipeEnds) == 0 else {
      throw RecordError(
        .launchFailed, errno: errno, message: "cannot create the pipe that starts the command")
    }
    // Only the dup2'd copy at fd 3 may reach the child; no other program we start may inherit either end.
    for end in pipeEnds { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
    gate = pipeEnds[1]
    defer { Glibc.close(pipeEnds[0]) }

    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, pipeEnds[0], 3)

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

    let shellArguments = ["/bin/sh", "-c", Self.gateScript, "flamespan-launch"] + arguments
    let cArguments = shellArguments.map { strdup($0) } + [nil]
    defer { cArguments.forEach { free($0) } }
    var childPid: pid_t = 0
    let status = posix_spawn(&childPid, "/bin/sh", &actions, &attributes, cArguments, environ)
    guard status == 0 else {
      Glibc.close(gate)
      throw RecordError(
        .launchFailed, errno: status, message: "cannot start /bin/sh to launch `\(program)`")
    }
    pid = childPid
  }

  deinit { release() }

  /// Lets the command run. Call once its pid is in the sampler's filter.
  func release() {
    guard gate >= 0 else { return }
    var newline = UInt8(ascii: "\n")
    _ = write(gate, &newline, 1)
    Glibc.close(gate)
    gate = -1
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

  /// A path with a slash must be an executable file; a bare name must be one on PATH, as execvp finds it.
  static func isRunnable(_ program: String) -> Bool {
    if program.contains("/") { return access(program, X_OK) == 0 }
    let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin"
    return path.split(separator: ":").contains { directory in
      access("\(directory)/\(program)", X_OK) == 0
    }
  }
}
