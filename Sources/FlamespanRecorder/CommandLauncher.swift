import Glibc

/// Starts the command given after `--` and reaps it. The command runs in a process group of its own, so
/// that the signals that stop a recording (SIGINT, SIGTERM, SIGHUP) reach it once, forwarded by us, and a
/// forced stop can kill everything it started. It still writes to our terminal; a command that reads
/// from the terminal is stopped by it (SIGTTIN), as any background job is.
///
/// The command is held at a gate until `release()`: a shell waits on a pipe and then execs it. Otherwise it
/// could fork helpers (as `/usr/bin/time` does) before its pid joins the sampler's filter, and those
/// children would never be followed.
final class CommandLauncher {
  let pid: pid_t
  private(set) var exitStatus: Int32?
  private var gate: Int32
  /// The signal forwarded to the command's group, and when.
  private var forwarded: (signal: Int32, at: UInt64)?

  /// The shell's whole job: wait for the byte that opens the gate, drop the pipe, become the command.
  private static let gateScript = "read -r _ <&3; exec 3<&-; exec \"$@\""

  init(arguments: [String]) throws(RecordError) {
    guard let program = arguments.first else {
      throw RecordError(.launchFailed, message: "no command given after --")
    }
    if let error = Self.runnableError(program) {
      throw RecordError(
        .launchFailed, errno: error,
        message: error == ENOENT
          ? "cannot start `\(program)` (is it installed and on PATH?)" : "cannot start `\(program)`"
      )
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
    for signal in [SIGINT, SIGTERM, SIGHUP, SIGPIPE] { sigaddset(&defaults, signal) }
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    // A group of its own, whose id is the child's pid (the gate shell execs the command in place).
    posix_spawnattr_setpgroup(&attributes, 0)
    posix_spawnattr_setflags(
      &attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

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

  /// Signals the command's process group (and the command itself, in case it left the group).
  func signalGroup(_ signal: Int32) {
    guard exitStatus == nil else { return }
    _ = kill(-pid, signal)
    _ = kill(pid, signal)
  }

  /// Waits for the child after the recording stopped, so no zombie is left behind. A stop request's
  /// signal is forwarded to the command's group; from then on the command has `grace` to exit, and a
  /// forced request or the end of the grace kills the group. Without a request the command is waited for
  /// as long as it runs (a --duration that ended before it). Returns a note for the summary when the
  /// command had to be killed.
  func stop(stopRequest: () -> StopRequest, grace: UInt64 = commandStopGraceNanos) -> String? {
    while !hasExited() {
      let request = stopRequest()
      forward(request)
      if let (signal, at) = forwarded,
        request.force || Self.monotonicNanos() - at >= grace
      {
        signalGroup(SIGKILL)
        while !hasExited() { usleep(5_000) }
        return request.force
          ? "the command was killed (SIGKILL to its process group) on a second signal"
          : "the command did not exit within \(grace / 1_000_000_000) s of \(Self.name(of: signal)); it was killed (SIGKILL to its process group)"
      }
      usleep(10_000)
    }
    return nil
  }

  /// Sends a stop request's signal to the command's group, once; the grace starts then.
  func forward(_ request: StopRequest) {
    guard forwarded == nil, let signal = request.signal else { return }
    signalGroup(signal)
    forwarded = (signal, Self.monotonicNanos())
  }

  static func name(of signal: Int32) -> String {
    switch signal {
    case SIGINT: return "SIGINT"
    case SIGTERM: return "SIGTERM"
    case SIGHUP: return "SIGHUP"
    default: return "signal \(signal)"
    }
  }

  static func monotonicNanos() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
  }

  /// Why `program` cannot be executed, as execvp would say it: nil when it can. A path with a slash must
  /// be an executable file; a bare name must be one on PATH. A file that exists but may not be executed
  /// is EACCES ("Permission denied"), not ENOENT.
  static func runnableError(_ program: String) -> Int32? {
    func check(_ path: String) -> Int32? {
      if access(path, X_OK) == 0 {
        var info = stat()
        if stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR { return EACCES }
        return nil
      }
      return errno
    }
    if program.contains("/") { return check(program) }
    let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin"
    var found: Int32 = ENOENT
    for directory in path.split(separator: ":") {
      guard let error = check("\(directory)/\(program)") else { return nil }
      // As execvp: a file found but not executable is reported when nothing later on PATH runs.
      if error == EACCES { found = EACCES }
    }
    return found
  }
}
