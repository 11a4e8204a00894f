import ArgumentParser

/// What differs between the commands that sample: their defaults, and a note on --unwind.
protocol SamplingDefaults {
  static var frequency: String { get }
  static var unwind: String { get }
  static var unwindNote: String { get }
}

/// The sampling options `record` and `agent` share, declared once. Both are optional here, so each
/// command applies its own default (and the agent lets its config file and defaults fill them).
struct SamplingOptions<Defaults: SamplingDefaults>: ParsableArguments {
  @Option(
    name: [.customShort("F"), .long],
    help: ArgumentHelp(
      "Samples per second on each CPU, 1 to 10000 (default \(Defaults.frequency)).", valueName: "hz"
    ))
  var frequency: Int?

  @Option(
    help: ArgumentHelp(
      "How to walk user stacks (default \(Defaults.unwind)). auto: copy the top of each user stack and unwind each frame as its code needs: Go from its .gopclntab, JIT code (Node --perf-basic-prof, Java with a perf map) on frame pointers and named from /tmp/perf-PID.map, native code with DWARF CFI, and frame pointers where there is no CFI. dwarf: DWARF CFI only. fp: the kernel's frame-pointer walk, no stack copy (cheapest; stacks stop early in code built without frame pointers, such as Debian's libc).\(Defaults.unwindNote)",
      valueName: "auto|dwarf|fp"))
  var unwind: String?
}
