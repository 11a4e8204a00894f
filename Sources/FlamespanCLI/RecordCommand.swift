import ArgumentParser
import FlamespanBPF
import FlamespanExport
import FlamespanL7
import FlamespanModel
import FlamespanOTLP
import FlamespanRecorder
import Glibc

enum RecordSamplingDefaults: SamplingDefaults {
  static let frequencyHz = 99
  static var frequency: String { String(frequencyHz) }
  static let unwind = "auto"
  static let unwindNote = " With --kernel-aggregation, auto means fp."
}

struct RecordCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "record",
    abstract: "Sample CPU stacks and write pprof, folded stacks or an SVG flame graph.",
    discussion: """
      Without --pid or a command, every CPU of the machine is sampled. Each output's format follows its extension: .pb.gz (gzipped pprof), .folded (collapsed stacks), .svg (interactive flame graph). Repeat --output to write several. Ctrl-C stops early and still writes every output.

      With a command (after --), the command runs in a process group of its own. SIGINT, SIGTERM or SIGHUP to flamespan is forwarded to that group; the command gets 5 s to exit (then its group is killed), and a second Ctrl-C kills it at once; every output is still written. flamespan then exits with the command's status, 128 + N when signal N ended it, as `time` does. With --pid or the whole machine, these signals only stop the recording: no process is signalled. At the end a summary shows samples, lost samples and the top functions.

      Examples:
        flamespan record --duration 10s -o profile.pb.gz -o flame.svg
        flamespan record -F 999 -o cmd.folded -- ./samples/bin/hotpaths 3
        flamespan record --pid 1234 --pid 5678 -d 2m -o services.pb.gz
        node --perf-basic-prof app.js & flamespan record --pid $! -o node.folded   # JS functions named
        flamespan record --unwind fp -o cheap.pb.gz    # no stack copies: cheapest, shorter stacks

      Stacks are complete by default (--unwind auto): Go through its .gopclntab, JIT code named from /tmp/perf-PID.map (Java: jcmd PID Compiler.perfmap, run with -XX:+PreserveFramePointer), native code through DWARF CFI or frame pointers. The summary says, per process, why any stack stopped early.

      Needs root, or CAP_BPF and CAP_PERFMON, and a kernel with BTF (/sys/kernel/btf/vmlinux).
      """
  )

  @Option(
    name: [.short, .long],
    help: ArgumentHelp(
      "Process to sample, with all its threads, the descendants it already has and those it starts (repeatable).",
      valueName: "pid"))
  var pid: [Int32] = []

  @OptionGroup var sampling: SamplingOptions<RecordSamplingDefaults>
  var frequency: Int { sampling.frequency ?? RecordSamplingDefaults.frequencyHz }
  var unwind: String { sampling.unwind ?? RecordSamplingDefaults.unwind }

  @Option(
    name: [.short, .long],
    help: ArgumentHelp(
      "Stop after this long: plain seconds or with a unit (8, 8s, 500ms, 2m, 1h); 1ms to 365d.",
      valueName: "duration"))
  var duration: String?

  @Option(
    name: [.short, .long],
    help: ArgumentHelp(
      "Output file; the extension picks the format (repeatable).", valueName: "path"))
  var output: [String] = []

  @Option(help: "Title of the SVG flame graph.")
  var title: String = "Flamespan CPU profile"

  @Flag(
    help: ArgumentHelp(
      "Count stacks in kernel maps instead of streaming each sample (cheaper; no span ids, and processes that exit before the end lose their user frames)."
    ))
  var kernelAggregation = false

  @Flag(
    help: ArgumentHelp(
      "Do not trace HTTP/1.x requests: samples carry no trace_id/span_id labels and no spans are collected."
    ))
  var noHttpTracing = false

  @Option(
    help: ArgumentHelp(
      "Kernel hooks of the HTTP tracer: socket (sock_recv_length/sock_send_length tracepoints, Linux 6.3+; cheap, they fire only for socket I/O), syscalls (syscall tracepoints, needs tracefs; slows every syscall on the machine while on), or auto (socket where the kernel has it).",
      valueName: "auto|socket|syscalls"))
  var httpHooks: String = "auto"

  @Option(
    help: ArgumentHelp(
      "Write the HTTP spans seen during the recording as one OTLP/JSON ExportTraceServiceRequest.",
      valueName: "path"))
  var spansOutput: String?

  @Option(
    help: ArgumentHelp(
      "With --unwind auto or dwarf: bytes of user stack copied per sample (8 to 65536); deeper stacks continue on frame pointers where they can, and are marked truncated where not.",
      valueName: "bytes"
    ))
  var stackCopyBytes: Int = 16384

  @Flag(name: .shortAndLong, help: "No progress line.")
  var quiet = false

  @Argument(
    parsing: .postTerminator,
    help: ArgumentHelp(
      "Command to launch and profile until it exits (after --).", valueName: "command"))
  var command: [String] = []

  func validate() throws {
    guard !output.isEmpty else {
      throw ValidationError(
        "give at least one --output, for example: -o profile.pb.gz -o flame.svg")
    }
    guard (1...10_000).contains(frequency) else {
      throw ValidationError("--frequency must be between 1 and 10000 Hz (got \(frequency))")
    }
    guard L7Hooks(rawValue: httpHooks) != nil else {
      throw ValidationError("--http-hooks must be auto, socket or syscalls (got '\(httpHooks)')")
    }
    guard let unwinding = UserStackUnwinding(rawValue: unwind) else {
      throw ValidationError("--unwind must be auto, dwarf or fp (got '\(unwind)')")
    }
    guard (8...65536).contains(stackCopyBytes) else {
      throw ValidationError(
        "--stack-copy-bytes must be between 8 and 65536 (got \(stackCopyBytes))")
    }
    if unwinding == .dwarf && kernelAggregation {
      throw ValidationError(
        "--unwind dwarf needs per-sample records; it cannot be combined with --kernel-aggregation")
    }
    if let duration {
      do { _ = try Self.durationNanos(duration) } catch { throw ValidationError(error.message) }
    }
    for pid in pid where pid <= 0 {
      throw ValidationError("--pid must be a process id between 1 and \(Int32.max) (got \(pid))")
    }
    for path in output {
      do { try ProfileExporter.validateOutputPath(path) } catch {
        throw ValidationError(error.description)
      }
    }
    if let spansOutput {
      do { try ProfileExporter.validateWritablePath(spansOutput) } catch {
        throw ValidationError("--spans-output: \(error.description)")
      }
    }
  }

  func run() throws {
    var options = RecordingOptions()
    options.frequency = frequency
    options.pids = pid.isEmpty ? nil : pid
    options.durationNanos = try duration.map(Self.durationNanos)
    options.command = command.isEmpty ? nil : command
    options.aggregateInKernel = kernelAggregation
    options.traceHTTP = !noHttpTracing
    options.httpHooks = L7Hooks(rawValue: httpHooks) ?? .automatic
    // Kernel aggregation counts stacks in maps, with no per-sample record to carry a stack copy.
    let unwinding = UserStackUnwinding(rawValue: unwind) ?? .automatic
    options.unwinding = kernelAggregation && unwinding == .automatic ? .framePointers : unwinding
    options.userStackCopyBytes = stackCopyBytes

    StopSignal.install(hangUp: .stop)
    let showProgress = !quiet && isatty(STDERR_FILENO) != 0
    let scope =
      options.command.map { "`\($0.joined(separator: " "))`" }
      ?? options.pids.map { "pid \($0.map(String.init).joined(separator: ", "))" }
      ?? "the whole machine"
    if showProgress { Console.progress("loading the BPF programs…") }

    let recording: Recording
    do {
      recording = try Recorder(options: options).record(
        stopRequest: StopSignal.request,
        started: { warnings in
          if showProgress { Console.progress(nil) }
          for warning in warnings { Console.error("warning: \(warning)") }
          // Printed once attached (after any warning), so that scripts and people can start their load
          // on it.
          Console.error(
            "Sampling \(scope) at \(frequency) Hz\(duration.map { " for \($0)" } ?? ""); Ctrl-C to stop."
          )
        }
      ) { progress in
        guard showProgress else { return }
        Console.progress(
          String(
            format: "recording %.0fs · %d samples · %llu lost · %d processes",
            Double(progress.elapsedNanos) / 1e9,
            progress.samples, progress.lostSamples, progress.processes))
      }
    } catch {
      if showProgress { Console.progress(nil) }
      Console.error("flamespan record: \(error.description)")
      throw ExitCode(1)
    }
    if showProgress { Console.progress(nil) }

    Console.error(RecordSummaryText.render(recording))
    var failed = false
    for path in output {
      do {
        try ProfileExporter.write(recording.profile, to: path, title: title)
        Console.error("Wrote \(path)\(Self.readingHint(for: path))")
      } catch {
        Console.error("flamespan record: cannot write \(path): \(error.description)")
        failed = true
      }
    }
    if let spansOutput {
      do {
        try OTLPTraceEncoder.writeJSON(
          OTLPTraceEncoder.groupsByProcess(
            recording.spans, hostName: HostName.current() ?? "unknown",
            processNames: recording.spanProcessNames),
          to: spansOutput, scopeVersion: "0.1.0")
        Console.error("Wrote \(spansOutput) (\(recording.spans.count) spans, OTLP/JSON)")
      } catch {
        Console.error("flamespan record: \(error.description)")
        failed = true
      }
    }
    if failed { throw ExitCode(1) }
    // As `time` and `perf record` do: the command's status is ours, 128 + N when signal N ended it.
    if let status = recording.summary.commandExitStatus {
      let code = Self.shellStatus(status)
      if code != 0 { throw ExitCode(code) }
    }
  }

  /// A wait status as a shell shows it: the exit code, or 128 + the signal that ended the process.
  static func shellStatus(_ status: Int32) -> Int32 {
    status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
  }

  /// 1 ms to a year: past that the recording's own clocks and buffers are the limit, not the user.
  static let durationRange: ClosedRange<UInt64> = 1_000_000...(365 * 86_400_000_000_000)

  static func durationNanos(_ text: String) throws(QuantityError) -> UInt64 {
    try DurationText.nanoseconds(text, option: "--duration", in: durationRange)
  }

  static func readingHint(for path: String) -> String {
    if path.hasSuffix(".pb.gz") { return "  (view: go tool pprof -http=: \(path))" }
    if path.hasSuffix(".svg") { return "  (open it in a browser)" }
    return ""
  }
}
