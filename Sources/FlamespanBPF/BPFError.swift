import Glibc

/// A failure of the BPF layer, with the errno the kernel or libbpf gave and what we were doing.
public struct BPFError: Error, CustomStringConvertible, Sendable {
  public enum Code: Sendable, Equatable {
    case missingPrivileges
    case openObject
    case setConfiguration
    case load
    case attach
    case perfEventOpen
    case ringBuffer
    case mapUpdate
    case noCPUs
  }

  public var code: Code
  /// Positive errno, or 0 when none applies.
  public var errno: Int32
  public var context: String
  /// libbpf's own diagnostics from the failing call (verifier log excerpts and the like).
  public var libbpfLog: String

  public init(_ code: Code, errno: Int32, context: String, libbpfLog: String = "") {
    self.code = code
    self.errno = errno
    self.context = context
    self.libbpfLog = libbpfLog
  }

  public var description: String {
    var text = context
    if errno != 0 { text += ": \(String(cString: strerror(errno))) (errno \(errno))" }
    if let hint { text += "\n  hint: \(hint)" }
    let log = libbpfLog.split(separator: "\n").suffix(12).joined(separator: "\n    ")
    if !log.isEmpty { text += "\n  libbpf said:\n    \(log)" }
    return text
  }

  /// What the user can do about it, when we know.
  public var hint: String? {
    if code == .missingPrivileges || errno == EPERM || errno == EACCES {
      return
        "Flamespan needs root, or the capabilities CAP_BPF and CAP_PERFMON (e.g. `sudo flamespan …`)."
    }
    if code == .perfEventOpen && errno == ENOENT {
      return "this kernel has no software cpu-clock perf event (CONFIG_PERF_EVENTS)."
    }
    if code == .load && errno == ESRCH {
      return "the kernel's BTF (/sys/kernel/btf/vmlinux) does not describe what the program needs."
    }
    return nil
  }
}
