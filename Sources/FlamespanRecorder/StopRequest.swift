import Glibc

/// Why a recording is asked to stop, as the CLI's signal handlers saw it.
public struct StopRequest: Sendable, Equatable {
  /// The signal that asked to stop (SIGINT, SIGTERM, SIGHUP); a launched command's process group gets
  /// the same one. nil: no stop was asked for.
  public var signal: Int32?
  /// A second signal: stop waiting for the command and kill its process group.
  public var force: Bool

  public init(signal: Int32? = nil, force: Bool = false) {
    self.signal = signal
    self.force = force
  }

  public static let none = StopRequest()
}

/// How long a launched command has, after the signal is forwarded to it, before its process group is
/// killed and the outputs are written.
public let commandStopGraceNanos: UInt64 = 5_000_000_000
