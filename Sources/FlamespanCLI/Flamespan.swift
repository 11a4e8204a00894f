import ArgumentParser

@main
struct Flamespan: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "flamespan",
    abstract:
      "A whole-machine CPU profiler for Linux: eBPF sampling, DWARF symbolization, pprof and flame graphs.",
    discussion: """
      Typical use (as root, or with CAP_BPF and CAP_PERFMON):
        flamespan record --duration 10s -o profile.pb.gz -o flame.svg      whole machine for 10 seconds
        flamespan record -o run.pb.gz -- ./my-program --its-args           one command, until it exits
        flamespan record --pid 1234 -o service.folded                      one process, until Ctrl-C
        flamespan symbolize --binary ./a.out < addresses.txt               addresses to function, file:line

      Read the results with `go tool pprof -http=: profile.pb.gz`, or open the .svg in a browser.
      """,
    subcommands: [RecordCommand.self, SymbolizeCommand.self, DrillCommand.self, SpansCommand.self]
  )
}
