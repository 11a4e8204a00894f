import CLibBPF
import Glibc

/// One BPF ring buffer per possible CPU, created by user space and placed in an array-of-maps that the
/// BPF side indexes by the CPU it runs on. The fds stay open until `close`; the reader's mappings hold
/// the rings too.
struct PerCPURings {
  /// The rings' fds, by CPU.
  private(set) var fds: [Int32] = []

  /// Every CPU gets the same share of `totalBytes`, rounded down to a power of two and at least a page,
  /// so that the sum stays near the size asked for on any machine.
  static func bytesPerCPU(totalBytes: Int, cpus: Int) -> Int {
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let share = totalBytes / max(cpus, 1)
    guard share > page else { return page }
    return 1 << (Int.bitWidth - 1 - share.leadingZeroBitCount)
  }

  /// No rings yet.
  init() {}

  static var possibleCPUs: Int { max(Int(libbpf_num_possible_cpus()), 1) }

  /// Creates the rings and fills `outerFD`, an array-of-maps with one slot per possible CPU. `owner`
  /// names the rings in errors ("the L7 tracer's").
  init(outerFD: Int32, totalBytes: Int, owner: String) throws(BPFError) {
    let cpus = Self.possibleCPUs
    let bytesPerCPU = Self.bytesPerCPU(totalBytes: totalBytes, cpus: cpus)
    for cpu in 0..<cpus {
      let fd = bpf_map_create(
        BPF_MAP_TYPE_RINGBUF, "l7_ring", 0, 0, UInt32(clamping: bytesPerCPU), nil)
      guard fd >= 0 else {
        let code = errno
        close()
        throw BPFError(
          .setConfiguration, errno: code,
          context: "cannot create \(owner) ring buffer for CPU \(cpu) (\(bytesPerCPU) bytes)")
      }
      fds.append(fd)
      var key = UInt32(cpu)
      var value = UInt32(bitPattern: fd)
      let status = bpf_map_update_elem(outerFD, &key, &value, UInt64(BPF_ANY))
      guard status == 0 else {
        close()
        throw BPFError(
          .mapUpdate, errno: -status, context: "cannot install \(owner) ring buffer for CPU \(cpu)")
      }
    }
  }

  mutating func close() {
    for fd in fds { Glibc.close(fd) }
    fds = []
  }
}
