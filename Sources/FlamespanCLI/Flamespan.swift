import ArgumentParser

@main
struct Flamespan: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "flamespan",
    abstract:
      "A whole-machine CPU profiler for Linux: eBPF sampling, DWARF symbolization, pprof and flame graphs.",
    discussion: """
      Run as root, or with CAP_BPF and CAP_PERFMON. Typical use:

        # the whole machine for 10 seconds
        flamespan record --duration 10s -o profile.pb.gz -o flame.svg
        # one command, until it exits
        flamespan record -o run.pb.gz -- ./my-program --its-args
        # one process, until Ctrl-C
        flamespan record --pid 1234 -o service.folded
        # addresses to function, file:line and inline chain
        flamespan symbolize --binary ./a.out < addresses.txt

      Read the results with `go tool pprof -http=: profile.pb.gz`, or open the .svg in a browser.
      """,
    subcommands: [
      AgentCommand.self, RecordCommand.self, SymbolizeCommand.self, DrillCommand.self,
      SpansCommand.self,
    ]
  )
}
