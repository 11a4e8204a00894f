import CBPFShim
import CFlamespanABI
import CLibBPF
import FlamespanModel
import Foundation

public struct SamplerConfiguration: Sendable {
  /// Samples per second on each CPU.
  public var frequency: Int
  /// Thread groups to sample, with every process they fork; nil samples the whole machine.
  public var pids: [Int32]?
  /// Count distinct stacks in kernel maps instead of streaming each sample: less work per sample, but no
  /// per-sample time or span, and mappings are only read at the end.
  public var aggregateInKernel: Bool

  /// A `traces_ctx_v1` map that another loaded object (the L7 tracer) writes; the sampler reads the active
  /// span of each thread from it. nil gives the sampler a private, empty map.
  public var activeSpanMap: SharedMap?

  /// Bytes of the user stack to copy into each sample (from the user stack pointer up), with the user
  /// registers, for DWARF CFI unwinding in user space; nil sends frame-pointer stacks only. At most
  /// `SamplerConfiguration.maximumUserStackCopyBytes`.
  public var userStackCopyBytes: Int?
  /// Size of the ring buffer: a power of two, at least one page. nil picks 8 MiB, or, when stacks are
  /// copied, room for half a second of full-size records from every CPU (at least 8 MiB, at most 256 MiB).
  public var ringBufferBytes: Int?

  public static let maximumUserStackCopyBytes = Int(FS_MAX_USER_STACK_COPY)

  public init(
    frequency: Int = 99, pids: [Int32]? = nil, aggregateInKernel: Bool = false,
    activeSpanMap: SharedMap? = nil, userStackCopyBytes: Int? = nil, ringBufferBytes: Int? = nil
  ) {
    self.frequency = frequency
    self.pids = pids
    self.aggregateInKernel = aggregateInKernel
    self.activeSpanMap = activeSpanMap
    self.userStackCopyBytes = userStackCopyBytes
    self.ringBufferBytes = ringBufferBytes
  }

  var effectiveRingBufferBytes: Int {
    if let ringBufferBytes { return ringBufferBytes }
    guard let copy = userStackCopyBytes else { return 8 << 20 }
    // The reader drains every 100 ms; half a second of headroom absorbs a slow symbol load or a busy CPU.
    let cpus = max(OnlineCPUs.read().count, 1)
    let perSecond = cpus * max(frequency, 1) * (copy + Int(FS_SAMPLE_WITH_STACK_HEADER_BYTES))
    var size = 8 << 20
    while size < perSecond / 2 && size < 256 << 20 { size <<= 1 }
    return size
  }
}

/// The loaded and attached `profile.bpf.c`: one cpu-clock perf event per online CPU, the exec/exit/fork
/// tracepoints, and the ring buffer they all write to. Lifecycle: init (open → configure → load → attach),
/// `poll` until done, `close` (also on deinit).
public final class CPUSampler {
  public let configuration: SamplerConfiguration
  /// CPUs with an attached perf event.
  public private(set) var sampledCPUs: [Int] = []
  /// CPUs listed online whose perf event could not be opened (they went offline meanwhile), with errno.
  public private(set) var skippedCPUs: [(cpu: Int, errno: Int32)] = []

  private var object: OpaquePointer?
  private var links: [OpaquePointer] = []
  private var perfEventFDs: [Int32] = []
  private var reader: RingBufferReader<SamplerEvent>?
  private var targetsFD: Int32 = -1
  private var pythonProcessesFD: Int32 = -1
  private var counterMap = PerCPUCounters(fd: -1)

  public init(configuration: SamplerConfiguration) throws(BPFError) {
    self.configuration = configuration
    if let missing = Privileges.missingForProfiling() {
      throw BPFError(
        .missingPrivileges, errno: EPERM, context: "cannot load the sampler: \(missing)")
    }
    do {
      try open()
      try attach()
    } catch {
      close()
      throw error
    }
  }

  deinit { close() }

  private func open() throws(BPFError) {
    LibBPFLog.startCapturing()
    let bytes = [UInt8](Data(base64Encoded: EmbeddedBPFObjects.profile)!)
    object = bytes.withUnsafeBytes {
      fs_open_object_from_memory($0.baseAddress, $0.count, "flamespan_profile")
    }
    guard let object else {
      throw BPFError(
        .openObject, errno: errno, context: "cannot open the embedded sampler object",
        libbpfLog: LibBPFLog.take())
    }
    try setReadOnly("filter_by_pid", configuration.pids != nil)
    try setReadOnly("aggregate_in_kernel", configuration.aggregateInKernel)
    if !configuration.aggregateInKernel {
      // Only in-kernel aggregation uses these; at full size they are ~20 MB of kernel memory.
      try resizeMap("stack_traces", entries: 1)
      try resizeMap("stack_counts", entries: 1)
    }
    try configureStackCopy()
    if let shared = configuration.activeSpanMap {
      guard let map = bpf_object__find_map_by_name(object, "traces_ctx_v1") else {
        throw BPFError(
          .openObject, errno: ENOENT, context: "the sampler object has no traces_ctx_v1 map")
      }
      let status = bpf_map__reuse_fd(map, shared.fd)
      guard status == 0 else {
        throw BPFError(
          .setConfiguration, errno: -status,
          context: "cannot share the active-span map with the sampler")
      }
    }
    let loaded = bpf_object__load(object)
    guard loaded == 0 else {
      throw BPFError(
        .load, errno: -loaded, context: "the kernel refused the sampler program",
        libbpfLog: LibBPFLog.take())
    }
    targetsFD = try mapFD("targets")
    pythonProcessesFD = try mapFD("python_processes")
    counterMap = PerCPUCounters(fd: try mapFD("fs_counters"))
    for pid in configuration.pids ?? [] { try addTarget(pid: pid) }
  }

  private func configureStackCopy() throws(BPFError) {
    let ringBytes = configuration.effectiveRingBufferBytes
    guard ringBytes >= 4096, ringBytes.nonzeroBitCount == 1, ringBytes <= 1 << 30 else {
      throw BPFError(
        .setConfiguration, errno: EINVAL,
        context: "ring buffer size \(ringBytes) is not a power of two between 4 KiB and 1 GiB")
    }
    try resizeMap("events", entries: ringBytes)
    guard let copyBytes = configuration.userStackCopyBytes else { return }
    guard (8...Self.maximumCopy).contains(copyBytes) else {
      throw BPFError(
        .setConfiguration, errno: EINVAL,
        context: "user stack copy size \(copyBytes) is outside 8...\(Self.maximumCopy) bytes")
    }
    try setReadOnly("copy_user_stack", true)
    var bytes = UInt32(copyBytes)
    let status = fs_set_rodata_variable(object, "user_stack_copy_bytes", &bytes, 4)
    guard status == 0 else {
      throw BPFError(
        .setConfiguration, errno: -status,
        context: "cannot set user_stack_copy_bytes in the sampler")
    }
    try resizeMap("stack_copies", entries: max(Int(libbpf_num_possible_cpus()), 1))
  }

  private static let maximumCopy = SamplerConfiguration.maximumUserStackCopyBytes

  private func resizeMap(_ name: String, entries: Int) throws(BPFError) {
    guard let map = bpf_object__find_map_by_name(object, name) else {
      throw BPFError(.openObject, errno: ENOENT, context: "the sampler object has no map \(name)")
    }
    let status = bpf_map__set_max_entries(map, UInt32(entries))
    guard status == 0 else {
      throw BPFError(
        .setConfiguration, errno: -status, context: "cannot size the sampler's \(name) map")
    }
  }

  private func setReadOnly(_ name: String, _ value: Bool) throws(BPFError) {
    var value = value
    let status = fs_set_rodata_variable(object, name, &value, MemoryLayout<Bool>.size)
    guard status == 0 else {
      throw BPFError(
        .setConfiguration, errno: -status, context: "cannot set \(name) in the sampler")
    }
  }

  private func mapFD(_ name: String) throws(BPFError) -> Int32 {
    try ObjectMaps.fd(of: name, in: object, owner: "the sampler")
  }

  private func attach() throws(BPFError) {
    for name in ["on_exec", "on_exit", "on_fork"] {
      guard let program = bpf_object__find_program_by_name(object, name),
        let link = bpf_program__attach(program)
      else {
        throw BPFError(
          .attach, errno: errno, context: "cannot attach \(name)", libbpfLog: LibBPFLog.take())
      }
      links.append(link)
    }
    guard let sampleProgram = bpf_object__find_program_by_name(object, "sample_cpu") else {
      throw BPFError(
        .openObject, errno: ENOENT, context: "the sampler object has no sample_cpu program")
    }
    for cpu in OnlineCPUs.read() {
      let fd = fs_open_cpu_clock_event(Int32(cpu), UInt(configuration.frequency))
      if fd < 0 {
        // A CPU that went offline since we read the list is skipped, not fatal.
        if -fd == ENODEV || -fd == ENXIO {
          skippedCPUs.append((cpu, -fd))
          continue
        }
        throw BPFError(
          .perfEventOpen, errno: -fd, context: "cannot open the cpu-clock perf event on CPU \(cpu)")
      }
      perfEventFDs.append(fd)
      guard let link = bpf_program__attach_perf_event(sampleProgram, fd) else {
        throw BPFError(
          .attach, errno: errno, context: "cannot attach the sampler to CPU \(cpu)",
          libbpfLog: LibBPFLog.take())
      }
      links.append(link)
      sampledCPUs.append(cpu)
    }
    guard !sampledCPUs.isEmpty else {
      throw BPFError(.noCPUs, errno: ENODEV, context: "no online CPU could be sampled")
    }

    reader = try RingBufferReader(
      mapFD: try mapFD("events"), name: "the sampler's", decode: EventDecoder.decode)
  }

  /// Adds a thread group (and what it forks from now on) to the sampled set. Only meaningful with `pids`.
  public func addTarget(pid: Int32) throws(BPFError) {
    try ObjectMaps.addPid(pid, toFilter: targetsFD, owner: "the sampler")
  }

  /// Has the sampler walk `pid`'s CPython frames at each sample from now on (stack-copy modes only: with
  /// `userStackCopyBytes`), into `RawSample.interpreterStack`. Publishing again replaces the layout. The
  /// entry goes by itself when the process execs or exits.
  public func publishInterpreter(pid: Int32, layout: CPythonWalkLayout) throws(BPFError) {
    var entry = try InterpreterLayoutEntry.make(layout, pid: pid)
    var key = UInt32(bitPattern: pid)
    let status = ObjectMaps.update(pythonProcessesFD, key: &key, value: &entry)
    guard status == 0 else {
      if -status == E2BIG || -status == ENOMEM {
        throw BPFError(
          .mapUpdate, errno: -status,
          context:
            "cannot walk the Python frames of pid \(pid): the sampler already walks "
            + "\(InterpreterLayoutEntry.capacity) processes (its python_processes map is full); "
            + "withdraw processes that are no longer profiled, or sample fewer Python processes")
      }
      throw BPFError(
        .mapUpdate, errno: -status,
        context: "cannot publish pid \(pid)'s Python layout to the sampler")
    }
  }

  /// Stops walking `pid`'s interpreter frames; its samples keep their native stacks. A pid that was
  /// not published, or whose entry went with its exec or exit, is no error.
  public func withdrawInterpreter(pid: Int32) {
    var key = UInt32(bitPattern: pid)
    _ = bpf_map_delete_elem(pythonProcessesFD, &key)
  }

  /// Waits up to `timeoutMilliseconds` for records and hands each to `handler`. Returns how many were handled.
  /// An interrupted wait (a signal) returns 0 rather than failing.
  @discardableResult
  public func poll(timeoutMilliseconds: Int32, handler: (SamplerEvent) -> Void) throws(BPFError)
    -> Int
  {
    // Samples are submitted without a wakeup (sample_wakeup_flags in profile.bpf.c); the reader drains
    // whatever is present after each wait.
    try reader?.poll(timeoutMilliseconds: timeoutMilliseconds, handler: handler) ?? 0
  }

  /// Reads the per-CPU counters and sums them.
  public func counters() -> SamplerCounters {
    var totals = SamplerCounters()
    func read(_ counter: fs_counter) -> UInt64 { counterMap.sum(at: UInt32(counter.rawValue)) }
    totals.samples = read(FS_COUNTER_SAMPLES)
    totals.ringBufferFull = read(FS_COUNTER_RINGBUF_FULL)
    totals.kernelStackErrors = read(FS_COUNTER_KERNEL_STACK_ERR)
    totals.userStackErrors = read(FS_COUNTER_USER_STACK_ERR)
    totals.idle = read(FS_COUNTER_IDLE)
    totals.filtered = read(FS_COUNTER_FILTERED)
    totals.processEventsLost = read(FS_COUNTER_PROCESS_EVENTS_LOST)
    totals.targetsFull = read(FS_COUNTER_TARGETS_FULL)
    totals.stackMapFull = read(FS_COUNTER_STACK_MAP_FULL)
    totals.countsFull = read(FS_COUNTER_COUNTS_FULL)
    totals.stackCopyFailed = read(FS_COUNTER_STACK_COPY_FAILED)
    totals.stackCopyShort = read(FS_COUNTER_STACK_COPY_SHORT)
    totals.pythonStacks = read(FS_COUNTER_PYTHON_STACKS)
    totals.pythonTruncated = read(FS_COUNTER_PYTHON_TRUNCATED)
    totals.pythonReadFailed = read(FS_COUNTER_PYTHON_READ_FAILED)
    return totals
  }

  /// In-kernel aggregation mode: every distinct (thread, stacks) with its count, read from the maps. Call
  /// after the last poll; the stacks of negative ids (not stored) come back empty with their errno.
  public func takeKernelAggregates() -> [(sample: RawSample, count: UInt64)] {
    guard configuration.aggregateInKernel, let object,
      let countsMap = bpf_object__find_map_by_name(object, "stack_counts"),
      let stacksMap = bpf_object__find_map_by_name(object, "stack_traces")
    else { return [] }
    let countsFD = bpf_map__fd(countsMap)
    let stacksFD = bpf_map__fd(stacksMap)
    var results: [(RawSample, UInt64)] = []
    var key = fs_aggregate_key()
    var previous: fs_aggregate_key? = nil
    while true {
      let status: Int32 =
        if var previousKey = previous {
          bpf_map_get_next_key(countsFD, &previousKey, &key)
        } else {
          bpf_map_get_next_key(countsFD, nil, &key)
        }
      guard status == 0 else { break }
      previous = key
      var count: UInt64 = 0
      guard bpf_map_lookup_elem(countsFD, &key, &count) == 0 else { continue }
      let kernel = Self.readStack(stacksFD, id: key.kernel_stack_id)
      let user = Self.readStack(stacksFD, id: key.user_stack_id)
      let sample = RawSample(
        pid: Int32(bitPattern: key.pid), tid: Int32(bitPattern: key.tid), cpu: 0, timeNanos: 0,
        threadName: withUnsafeBytes(of: key.comm) { EventDecoder.cString($0) }, kernelStack: kernel,
        userStack: user,
        kernelStackErrno: key.kernel_stack_id < 0 && key.kernel_stack_id != -EFAULT
          ? -key.kernel_stack_id : nil,
        userStackErrno: key.user_stack_id < 0 ? -key.user_stack_id : nil)
      results.append((sample, count))
    }
    return results
  }

  /// In-kernel aggregation mode: the processes with samples so far, so user space can read their maps
  /// while they still run.
  public func pidsInKernelAggregates() -> Set<Int32> {
    guard configuration.aggregateInKernel, let object,
      let countsMap = bpf_object__find_map_by_name(object, "stack_counts")
    else { return [] }
    let fd = bpf_map__fd(countsMap)
    var pids: Set<Int32> = []
    var key = fs_aggregate_key()
    var status = bpf_map_get_next_key(fd, nil, &key)
    while status == 0 {
      pids.insert(Int32(bitPattern: key.pid))
      var previous = key
      status = bpf_map_get_next_key(fd, &previous, &key)
    }
    return pids
  }

  private static func readStack(_ fd: Int32, id: Int32) -> [UInt64] {
    guard id >= 0 else { return [] }
    var key = UInt32(id)
    var frames = [UInt64](repeating: 0, count: Int(FS_MAX_STACK_DEPTH))
    guard bpf_map_lookup_elem(fd, &key, &frames) == 0 else { return [] }
    return Array(frames.prefix { $0 != 0 })
  }

  /// Stops sampling (the programs are detached and the perf events closed) but keeps the ring buffer and the
  /// counters, so a last drain and the counters read after it agree exactly: nothing is submitted in
  /// between. Safe to call twice, and before `close`.
  public func detach() {
    for link in links { bpf_link__destroy(link) }
    links.removeAll()
    for fd in perfEventFDs { Glibc.close(fd) }
    perfEventFDs.removeAll()
  }

  /// Detaches every program and frees every kernel object. Safe to call twice.
  public func close() {
    reader?.close()
    reader = nil
    detach()
    if let object { bpf_object__close(object) }
    object = nil
  }
}

enum LibBPFLog {
  static func startCapturing() { fs_capture_libbpf_messages(Int32(LIBBPF_WARN.rawValue)) }

  static func take() -> String {
    var buffer = [CChar](repeating: 0, count: 16384)
    let count = fs_take_libbpf_messages(&buffer, buffer.count)
    return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }
}
