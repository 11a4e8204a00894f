import CLibBPF
import Glibc

/// Map access shared by the loaders: finding a map's fd, the pid-filter maps and per-CPU counter arrays.
enum ObjectMaps {
  /// `owner` names the object in the error ("the sampler").
  static func fd(of name: String, in object: OpaquePointer?, owner: String) throws(BPFError)
    -> Int32
  {
    let fd = bpf_object__find_map_by_name(object, name).map { bpf_map__fd($0) } ?? -1
    guard fd >= 0 else {
      throw BPFError(.openObject, errno: ENOENT, context: "\(owner) object has no map \(name)")
    }
    return fd
  }

  /// Writes one entry (insert or replace); 0 or a negative errno. BPF_ANY is spelled only in files that
  /// import CLibBPF alone: a file that also imports CBPFShim, which includes the same libbpf headers,
  /// takes the constant with it under whole-module optimization, and the release build then fails to
  /// find it in every other file (it did, twice).
  static func update<Key, Value>(_ fd: Int32, key: inout Key, value: inout Value) -> Int32 {
    bpf_map_update_elem(fd, &key, &value, UInt64(BPF_ANY))
  }

  /// Adds a thread group to a `u32 → u8` filter map.
  static func addPid(_ pid: Int32, toFilter fd: Int32, owner: String) throws(BPFError) {
    var key = UInt32(bitPattern: pid)
    var yes: UInt8 = 1
    let status = bpf_map_update_elem(fd, &key, &yes, UInt64(BPF_ANY))
    guard status == 0 else {
      throw BPFError(.mapUpdate, errno: -status, context: "cannot add pid \(pid) to \(owner)'s set")
    }
  }
}

/// A per-CPU array of u64 counters, read as sums over every possible CPU.
struct PerCPUCounters {
  let fd: Int32
  private var values: [UInt64]

  init(fd: Int32) {
    self.fd = fd
    values = [UInt64](repeating: 0, count: max(Int(libbpf_num_possible_cpus()), 1))
  }

  /// 0 when the map cannot be read: counters inform, they never fail a recording.
  mutating func sum(at index: UInt32) -> UInt64 {
    guard fd >= 0 else { return 0 }
    var key = index
    guard bpf_map_lookup_elem(fd, &key, &values) == 0 else { return 0 }
    return values.reduce(0, &+)
  }
}
