import CBPFShim
import CFlamespanABI
import CLibBPF
import FlamespanModel
import Foundation

/// Which kernel hooks feed the L7 tracer (see bpf/l7.bpf.c).
public enum L7Hooks: String, Sendable, CaseIterable {
  /// Socket hooks where the kernel has them (Linux 6.3+), syscall tracepoints otherwise.
  case automatic = "auto"
  /// `sock_recv_length`/`sock_send_length`/`inet_sock_set_state`: they fire only for socket I/O.
  case socket
  /// `syscalls:sys_enter_*`/`sys_exit_*`: any kernel with tracefs, but enabling them slows every syscall
  /// of every process on the machine.
  case syscalls
}

public struct L7TracerConfiguration: Sendable {
  /// Thread groups to trace, with every process they fork; nil traces the whole machine.
  public var pids: [Int32]?
  public var hooks: L7Hooks
  /// Bytes of exchange ring buffer in all, shared out as one ring per CPU (each a power of two, at least
  /// a page); nil means 16 MiB (~100k records: seconds of a busy server for a reader that falls behind).
  /// The kernel maps a ring's pages into the reader twice, so each MiB here is two of the reader's
  /// resident MiB.
  public var ringBufferBytes: Int?

  public init(pids: [Int32]? = nil, hooks: L7Hooks = .automatic, ringBufferBytes: Int? = nil) {
    self.pids = pids
    self.hooks = hooks
    self.ringBufferBytes = ringBufferBytes
  }
}

/// The loaded and attached `l7.bpf.c`, which follows HTTP/1.x exchanges on the TCP connections of the
/// traced processes. It owns the `traces_ctx_v1` map that says which span each thread is serving; hand
/// `activeSpanMap` to the sampler so that every sample carries it.
/// Lifecycle: init (open → configure → load → attach), `poll` until done, `close` (also on deinit).
public final class L7Tracer {
  public let configuration: L7TracerConfiguration
  /// The hooks in use: `configuration.hooks` with `.automatic` resolved.
  public let hooks: L7Hooks
  /// TLS connections the socket hooks follow at once (least recently used ones make room).
  static let tlsConnectionEntries: UInt32 = 4096

  /// The programs of each set of hooks; the rest (fork/exit, TLS) load with either.
  static let socketPrograms: Set<String> = [
    "socket_received", "socket_sent", "socket_state_changed",
  ]
  static func isSyscallProgram(_ name: String) -> Bool {
    name.hasPrefix("enter_") || name.hasPrefix("exit_")
  }

  /// Whether this kernel has the socket tracepoints (their BTF types exist from Linux 6.3 on). Read once per
  /// process: parsing the kernel's BTF takes tens of milliseconds, and a kernel does not gain tracepoints.
  public static let kernelHasSocketHooks: Bool = {
    guard let btf = btf__load_vmlinux_btf() else { return false }
    defer { btf__free(btf) }
    let names: [String] = ["btf_trace_sock_recv_length", "btf_trace_sock_send_length"]
    return names.allSatisfy { name in
      name.withCString { btf__find_by_name_kind(btf, $0, UInt32(BTF_KIND_TYPEDEF)) >= 0 }
    }
  }()

  private var object: OpaquePointer?
  private var links: [OpaquePointer] = []
  /// Hands out each record's bytes, valid during the handler only; `poll` decodes them, `collect` keeps them.
  private var reader: RingBufferReader<UnsafeRawBufferPointer>?
  private let addresses = AddressTextCache()
  /// `l7_target_bits`, mapped: bit `tgid` says whether a thread group is traced.
  private var targetBits: UnsafeMutableRawPointer?
  static let pidLimit = 1 << 22
  static let targetBitsBytes = pidLimit / 8
  private var counterMap = PerCPUCounters(fd: -1)
  /// The exchange records' ring buffers, one per CPU.
  private var rings = PerCPURings()
  static let defaultRingBufferBytes = 16 << 20
  /// CPUs the kernel may run (a ring buffer each), online or not.
  public static var possibleCPUs: Int { PerCPURings.possibleCPUs }
  private var spanMapFD: Int32 = -1

  /// The tracefs directories libbpf may resolve syscall tracepoints under.
  static let tracefsEventDirectories = [
    "/sys/kernel/tracing/events/syscalls", "/sys/kernel/debug/tracing/events/syscalls",
  ]
  public static let tracefsMissingMessage =
    "tracefs not mounted: run mount -t tracefs tracefs /sys/kernel/tracing"

  public init(configuration: L7TracerConfiguration) throws(BPFError) {
    self.configuration = configuration
    if let missing = Privileges.missingForProfiling() {
      throw BPFError(
        .missingPrivileges, errno: EPERM, context: "cannot load the L7 tracer: \(missing)")
    }
    switch configuration.hooks {
    case .automatic: hooks = Self.kernelHasSocketHooks ? .socket : .syscalls
    case .socket:
      guard Self.kernelHasSocketHooks else {
        throw BPFError(
          .load, errno: ENOENT,
          context:
            "this kernel has no sock_recv_length/sock_send_length tracepoints (Linux 6.3+): use --http-hooks syscalls"
        )
      }
      hooks = .socket
    case .syscalls: hooks = .syscalls
    }
    // Only syscall tracepoints are found through tracefs; the socket hooks attach through BTF.
    guard
      hooks == .socket
        || Self.tracefsEventDirectories.contains(where: {
          FileManager.default.fileExists(atPath: $0)
        })
    else {
      throw BPFError(.attach, errno: ENOENT, context: Self.tracefsMissingMessage)
    }
    do {
      try open()
      try attach()
    } catch {
      close()
      throw error
    }
    // Plaintext of the processes that already use libssl; a library that will not take probes costs the
    // TLS spans of that process, not the tracer.
    for pid in configuration.pids ?? [] { _ = try? attachTLS(pid: pid) }
  }

  deinit { close() }

  /// The map of the span each thread is serving (`traces_ctx_v1`, keyed by pid_tgid). Valid until `close`.
  public var activeSpanMap: SharedMap { SharedMap(fd: spanMapFD) }

  private func open() throws(BPFError) {
    // The shipped object has no benchmark stops (bpf/l7/bench_stops.h): a stage needs the bench-only one.
    let benchmarkStop = try Self.benchmarkStop()
    LibBPFLog.startCapturing()
    let embedded = benchmarkStop == nil ? EmbeddedBPFObjects.l7 : EmbeddedBPFObjects.l7_bench
    let bytes = [UInt8](Data(base64Encoded: embedded)!)
    object = bytes.withUnsafeBytes {
      fs_open_object_from_memory($0.baseAddress, $0.count, "flamespan_l7")
    }
    guard object != nil else {
      throw BPFError(
        .openObject, errno: errno, context: "cannot open the embedded L7 tracer object",
        libbpfLog: LibBPFLog.take())
    }
    var program = bpf_object__next_program(object, nil)
    while let current = program {
      let name = String(cString: bpf_program__name(current))
      let unused =
        hooks == .socket ? Self.isSyscallProgram(name) : Self.socketPrograms.contains(name)
      if unused { bpf_program__set_autoload(current, false) }
      program = bpf_object__next_program(object, current)
    }
    if hooks == .socket {
      // The socket hooks keep plain connections in socket storage; only TLS ones use this map, and its
      // 65,536 preallocated entries were 24.6 MB of kernel memory.
      let map = bpf_object__find_map_by_name(object, "l7_connections")
      let status = map.map { bpf_map__set_max_entries($0, Self.tlsConnectionEntries) } ?? -ENOENT
      guard status == 0 else {
        throw BPFError(
          .setConfiguration, errno: -status, context: "cannot size the L7 tracer's connection map")
      }
    }
    let ringTable = bpf_object__find_map_by_name(object, "l7_rings")
    let ringSlots = ringTable.map { bpf_map__set_max_entries($0, UInt32(PerCPURings.possibleCPUs)) }
    guard ringSlots == 0 else {
      throw BPFError(
        .setConfiguration, errno: -(ringSlots ?? -ENOENT),
        context: "cannot size the L7 tracer's table of ring buffers")
    }
    var filter = configuration.pids != nil
    let status = fs_set_rodata_variable(object, "filter_by_pid", &filter, MemoryLayout<Bool>.size)
    guard status == 0 else {
      throw BPFError(
        .setConfiguration, errno: -status, context: "cannot set filter_by_pid in the L7 tracer")
    }
    if let benchmarkStop { try setBenchmarkStop(benchmarkStop) }
    let loaded = bpf_object__load(object)
    guard loaded == 0 else {
      throw BPFError(
        .load, errno: -loaded, context: "the kernel refused the L7 tracer program",
        libbpfLog: LibBPFLog.take())
    }
    let bitsFD = try mapFD("l7_target_bits")
    let mapped = mmap(nil, Self.targetBitsBytes, PROT_READ | PROT_WRITE, MAP_SHARED, bitsFD, 0)
    guard let mapped, mapped != MAP_FAILED else {
      throw BPFError(
        .mapUpdate, errno: errno, context: "cannot map the L7 tracer's set of traced processes")
    }
    targetBits = mapped
    counterMap = PerCPUCounters(fd: try mapFD("l7_counters"))
    spanMapFD = try mapFD("traces_ctx_v1")
    let ringBytes = configuration.ringBufferBytes ?? Self.defaultRingBufferBytes
    guard ringBytes > 0 else {
      throw BPFError(
        .setConfiguration, errno: EINVAL,
        context: "the L7 tracer's ring buffer size must be positive, not \(ringBytes) bytes")
    }
    rings = try PerCPURings(
      outerFD: try mapFD("l7_rings"), totalBytes: ringBytes, owner: "the L7 tracer's")
    for pid in configuration.pids ?? [] { try addTarget(pid: pid) }
  }

  /// OpenSSL/BoringSSL libraries whose SSL_read/SSL_write(_ex) carry uprobes.
  public private(set) var tlsLibraries: Set<String> = []

  /// Attaches the TLS uprobes to the libssl mapped by `pid` (once per library file; the probes filter by
  /// the traced set in the kernel). Returns the libraries newly attached. A process without libssl is not
  /// an error.
  @discardableResult
  public func attachTLS(pid: Int32) throws(BPFError) -> [String] {
    guard let maps = try? String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8) else {
      return []
    }
    var libraries: [String] = []
    for line in maps.split(separator: "\n") {
      guard let path = line.split(separator: " ", omittingEmptySubsequences: true).last,
        path.hasPrefix("/"), path.split(separator: "/").last?.hasPrefix("libssl.so") == true
      else { continue }
      // Through the process's root, so a library in another mount namespace is the right file.
      let library = "/proc/\(pid)/root\(path)"
      if !tlsLibraries.contains(String(path)) && !libraries.contains(library) {
        libraries.append(library)
      }
    }
    var attached: [String] = []
    for library in libraries {
      let probes: [(function: String, program: String, returns: Bool)] = [
        ("SSL_read", "tls_read_enter", false), ("SSL_read", "tls_exit_probe", true),
        ("SSL_read_ex", "tls_read_ex_enter", false), ("SSL_read_ex", "tls_exit_probe", true),
        ("SSL_write", "tls_write_enter", false), ("SSL_write", "tls_exit_probe", true),
        ("SSL_write_ex", "tls_write_ex_enter", false), ("SSL_write_ex", "tls_exit_probe", true),
      ]
      var attachedHere = 0
      for probe in probes {
        guard let program = bpf_object__find_program_by_name(object, probe.program) else {
          throw BPFError(
            .openObject, errno: ENOENT, context: "the L7 tracer object has no \(probe.program)")
        }
        var options = bpf_uprobe_opts()
        options.sz = MemoryLayout<bpf_uprobe_opts>.size
        options.retprobe = probe.returns
        let link = probe.function.withCString { name in
          options.func_name = name
          return bpf_program__attach_uprobe_opts(program, -1, library, 0, &options)
        }
        // BoringSSL has no _ex forms: a missing symbol is skipped, not fatal.
        guard let link else { continue }
        links.append(link)
        attachedHere += 1
      }
      guard attachedHere > 0 else {
        throw BPFError(
          .attach, errno: errno, context: "cannot attach the TLS uprobes to \(library)",
          libbpfLog: LibBPFLog.take())
      }
      let mapped = String(library.dropFirst("/proc/\(pid)/root".count))
      tlsLibraries.insert(mapped)
      attached.append(mapped)
    }
    return attached
  }

  /// bench/l7/floor.sh and paired.sh measure what the socket hooks cost before any HTTP work by stopping
  /// them early, FLAMESPAN_BENCHMARK_L7_STOP=
  /// - filter: after the pid filter;
  /// - storage: after the connection lookup;
  /// - registers: after that and the syscall's registers;
  /// - payload: after those and the payload copy;
  /// - kernel-copy: as payload, with copies of the same sizes made from kernel memory instead, which
  ///   measures what reading the process's memory costs;
  /// - request: server requests handled in full (the span published), responses not looked at;
  /// - response: responses read and framed too, but a complete one is dropped without ending its span
  ///   (no withdrawal, end time or record);
  /// - socket: after the checks of the socket (TCP, address family, cookie), before the connection lookup;
  /// - status: a server response's status read, its framing not (the exchange is dropped there);
  /// - withdraw: exchanges end with their span withdrawn, but no end time and no record;
  /// - clock: as withdraw, with the end time.
  ///
  /// Such a recording yields no spans; nothing else sets the variable. Set but empty, it is unset, as a
  /// shell's `VAR=$stage command` leaves it when there is no stage. A stage loads the bench-only object
  /// l7_bench, the same programs compiled with the stops; without one, the shipped l7 has none.
  /// Returns the stage's number in bpf/l7/bench_stops.h, or nil.
  private static func benchmarkStop() throws(BPFError) -> UInt8? {
    guard let stage = ProcessInfo.processInfo.environment["FLAMESPAN_BENCHMARK_L7_STOP"],
      !stage.isEmpty
    else {
      return nil
    }
    let stop: UInt8
    switch stage {
    case "filter": stop = 1
    case "payload": stop = 2
    case "storage": stop = 3
    case "registers": stop = 4
    case "kernel-copy": stop = 5
    case "request": stop = 6
    case "response": stop = 7
    case "socket": stop = 8
    case "status": stop = 9
    case "withdraw": stop = 10
    case "clock": stop = 11
    default:
      throw BPFError(
        .setConfiguration, errno: EINVAL,
        context:
          "FLAMESPAN_BENCHMARK_L7_STOP must be filter, socket, storage, registers, payload, kernel-copy, request, status, response, withdraw or clock, not '\(stage)'"
      )
    }
    return stop
  }

  private func setBenchmarkStop(_ stage: UInt8) throws(BPFError) {
    var stop = stage
    let status = fs_set_rodata_variable(object, "benchmark_stop", &stop, 1)
    guard status == 0 else {
      throw BPFError(
        .setConfiguration, errno: -status, context: "cannot set benchmark_stop in the L7 tracer")
    }
  }

  private func mapFD(_ name: String) throws(BPFError) -> Int32 {
    try ObjectMaps.fd(of: name, in: object, owner: "the L7 tracer")
  }

  private func attach() throws(BPFError) {
    var program = bpf_object__next_program(object, nil)
    while let current = program {
      let name = String(cString: bpf_program__name(current))
      // The TLS uprobes attach per library, in attachTLS; the other set of hooks was not loaded.
      if name.hasPrefix("tls_") || !bpf_program__autoload(current) {
        program = bpf_object__next_program(object, current)
        continue
      }
      guard let link = bpf_program__attach(current) else {
        let code = errno
        let missingTracefs =
          code == ENOENT
          && !Self.tracefsEventDirectories.contains {
            FileManager.default.fileExists(atPath: $0)
          }
        throw BPFError(
          .attach, errno: code,
          context: missingTracefs
            ? Self.tracefsMissingMessage : "cannot attach the L7 tracer's \(name)",
          libbpfLog: LibBPFLog.take())
      }
      links.append(link)
      program = bpf_object__next_program(object, current)
    }
    reader = try RingBufferReader(mapFDs: rings.fds, name: "the L7 tracer's", decode: { $0 })
  }

  /// Adds a thread group (and what it forks from now on) to the traced set. Only meaningful with `pids`.
  public func addTarget(pid: Int32) throws(BPFError) {
    guard pid >= 0, Int(pid) < Self.pidLimit, let targetBits else {
      throw BPFError(
        .mapUpdate, errno: EINVAL,
        context: "cannot add pid \(pid) to the L7 tracer's set: pids must be below \(Self.pidLimit)"
      )
    }
    fs_atomic_set_bit(targetBits.assumingMemoryBound(to: UInt64.self), UInt32(pid))
  }

  /// Waits up to `timeoutMilliseconds` for exchange records and hands each to `handler`. Returns how many
  /// were handled. An interrupted wait (a signal) returns 0 rather than failing.
  @discardableResult
  public func poll(timeoutMilliseconds: Int32, handler: (L7Event) -> Void) throws(BPFError) -> Int {
    let addresses = self.addresses
    return try reader?.poll(timeoutMilliseconds: timeoutMilliseconds) {
      handler(L7ExchangeDecoder.decode($0, addresses: addresses))
    } ?? 0
  }

  /// Like `poll`, but keeps the records undecoded in `buffer`, for a consumer that must keep up with a
  /// busy server and decode later.
  @discardableResult
  public func collect(into buffer: inout L7RecordBuffer, timeoutMilliseconds: Int32)
    throws(BPFError)
    -> Int
  {
    try reader?.poll(timeoutMilliseconds: timeoutMilliseconds) { buffer.append($0) } ?? 0
  }

  /// Reads the per-CPU counters and sums them.
  public func counters() -> L7Counters {
    var totals = L7Counters()
    func read(_ counter: fs_l7_counter) -> UInt64 { counterMap.sum(at: UInt32(counter.rawValue)) }
    totals.exchanges = read(FS_L7_COUNTER_EXCHANGES)
    totals.eventsLost = read(FS_L7_COUNTER_EVENTS_LOST)
    totals.connectionMapFull = read(FS_L7_COUNTER_CONN_MAP_FULL)
    totals.activeSpanMapFull = read(FS_L7_COUNTER_SPAN_MAP_FULL)
    totals.notHTTP = read(FS_L7_COUNTER_NOT_HTTP)
    totals.rejectedTraceparents = read(FS_L7_COUNTER_BAD_TRACEPARENT)
    totals.targetsFull = read(FS_L7_COUNTER_TARGETS_FULL)
    totals.headsTooLong = read(FS_L7_COUNTER_HEAD_TOO_LONG)
    totals.pipelinedNotFollowed = read(FS_L7_COUNTER_PIPELINE_OVERFLOW)
    totals.requestLinesCut = read(FS_L7_COUNTER_LINE_CUT)
    return totals
  }

  /// Detaches every program and frees every kernel object. Safe to call twice.
  public func close() {
    reader?.close()
    reader = nil
    rings.close()
    if let targetBits { munmap(targetBits, Self.targetBitsBytes) }
    targetBits = nil
    for link in links { bpf_link__destroy(link) }
    links.removeAll()
    if let object { bpf_object__close(object) }
    object = nil
    spanMapFD = -1
  }
}
