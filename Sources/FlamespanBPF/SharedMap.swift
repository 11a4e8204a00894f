/// A BPF map owned by one loaded object and handed to another, so both programs see the same entries.
/// The owner keeps the fd open for as long as both are loaded (libbpf duplicates it on reuse).
public struct SharedMap: Sendable {
  public let fd: Int32

  public init(fd: Int32) { self.fd = fd }
}
