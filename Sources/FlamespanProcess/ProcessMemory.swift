#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// Reads another process's memory with process_vm_readv: one system call per read, no ptrace stop, so
/// the process runs on while it is read. What is read can change under the reader (a torn read): callers
/// that follow pointers must check what they find.
public struct ProcessMemory: Sendable {
  public let pid: Int32

  public init(pid: Int32) { self.pid = pid }

  /// Exactly `count` bytes at `address`. A read that stops early (its end is not mapped) is `unmapped`.
  public func read(_ address: UInt64, count: Int) throws(ProcessMemoryError) -> [UInt8] {
    guard count > 0 else { return [] }
    guard count <= Self.maximumReadBytes, address <= UInt64.max - UInt64(count) else {
      throw ProcessMemoryError(
        kind: .unmapped, pid: pid, address: address, count: count, errno: EFAULT)
    }
    var buffer = [UInt8](repeating: 0, count: count)
    let done = buffer.withUnsafeMutableBytes { raw -> Int in
      var local = iovec(iov_base: raw.baseAddress, iov_len: count)
      var remote = iovec(
        iov_base: UnsafeMutableRawPointer(bitPattern: UInt(address)), iov_len: count)
      return ProcessVMRead.function(pid_t(pid), &local, 1, &remote, 1, 0)
    }
    if done < 0 {
      let error = errno
      throw ProcessMemoryError(
        kind: ProcessMemoryError.Kind(errno: error), pid: pid, address: address, count: count,
        errno: error)
    }
    guard done == count else {
      throw ProcessMemoryError(
        kind: .unmapped, pid: pid, address: address, count: count, errno: EFAULT)
    }
    return buffer
  }

  /// A little-endian 64-bit word at `address`.
  public func readUInt64(_ address: UInt64) throws(ProcessMemoryError) -> UInt64 {
    let bytes = try read(address, count: 8)
    return bytes.littleEndianUInt64(at: 0)
  }

  /// A little-endian 32-bit word at `address`.
  public func readUInt32(_ address: UInt64) throws(ProcessMemoryError) -> UInt32 {
    let bytes = try read(address, count: 4)
    return UInt32(truncatingIfNeeded: bytes.littleEndianUInt64(at: 0, width: 4))
  }

  /// Larger reads are refused: sizes come from the other process's data, which may be garbage.
  public static let maximumReadBytes = 16 << 20
}

/// glibc's process_vm_readv, which the Glibc module does not import (its declaration needs _GNU_SOURCE):
/// looked up once by name. glibc has exported it since 2.15.
private enum ProcessVMRead {
  typealias Function =
    @convention(c) (
      pid_t, UnsafePointer<iovec>?, UInt, UnsafePointer<iovec>?, UInt, UInt
    ) -> Int

  static let function: Function = {
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "process_vm_readv") else {
      fatalError("the C library has no process_vm_readv (glibc 2.15+ and musl 1.1.5+ do)")
    }
    return unsafeBitCast(symbol, to: Function.self)
  }()
}

/// Why a read of another process's memory failed, with the errno of process_vm_readv.
public struct ProcessMemoryError: Error, Sendable, Equatable, CustomStringConvertible {
  public enum Kind: Sendable, Equatable {
    /// ESRCH: the process exited.
    case processGone
    /// EFAULT: the range (or its end) is not mapped in the process.
    case unmapped
    /// EPERM: no right to read the process (ptrace access mode).
    case permissionDenied
    /// Any other errno.
    case other

    public init(errno: Int32) {
      switch errno {
      case ESRCH: self = .processGone
      case EFAULT: self = .unmapped
      case EPERM, EACCES: self = .permissionDenied
      default: self = .other
      }
    }
  }

  public var kind: Kind
  public var pid: Int32
  public var address: UInt64
  public var count: Int
  public var errno: Int32

  public init(kind: Kind, pid: Int32, address: UInt64, count: Int, errno: Int32) {
    self.kind = kind
    self.pid = pid
    self.address = address
    self.count = count
    self.errno = errno
  }

  public var description: String {
    let range = "\(count) bytes at 0x\(String(address, radix: 16)) of pid \(pid)"
    switch kind {
    case .processGone:
      return "cannot read \(range): the process has exited (errno \(errno), ESRCH)"
    case .unmapped:
      return "cannot read \(range): not mapped in the process (errno \(errno), EFAULT)"
    case .permissionDenied:
      return
        "cannot read \(range): permission denied (errno \(errno)); run as root, or grant "
        + "CAP_SYS_PTRACE, or lower /proc/sys/kernel/yama/ptrace_scope"
    case .other:
      return
        "cannot read \(range): \(String(cString: strerror(errno))) (errno \(errno))"
    }
  }
}

extension [UInt8] {
  /// The little-endian unsigned value of `width` bytes at `offset`; 0 when they are not all there.
  func littleEndianUInt64(at offset: Int, width: Int = 8) -> UInt64 {
    guard offset >= 0, width <= 8, offset <= count - width else { return 0 }
    var value: UInt64 = 0
    for index in (0..<width).reversed() { value = value << 8 | UInt64(self[offset + index]) }
    return value
  }
}
