import FlamespanBPF
import Glibc

public struct RecordError: Error, CustomStringConvertible, Sendable {
  public enum Code: Sendable, Equatable {
    case bpf(BPFError.Code)
    case noSuchProcess
    case launchFailed
  }

  public var code: Code
  public var errno: Int32
  public var message: String

  public init(_ code: Code, errno: Int32 = 0, message: String) {
    self.code = code
    self.errno = errno
    self.message = message
  }

  init(_ error: BPFError) {
    self.init(.bpf(error.code), errno: error.errno, message: error.description)
  }

  public var description: String {
    guard errno != 0, case .bpf = code else {
      return errno == 0 ? message : "\(message): \(String(cString: strerror(errno)))"
    }
    return message
  }
}
