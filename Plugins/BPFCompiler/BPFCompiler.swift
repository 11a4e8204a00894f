import Foundation
import PackagePlugin

/// Compiles every `bpf/*.bpf.c` into a BPF object with clang and embeds the objects into the target as a
/// generated Swift file, so that a plain `swift build` from a fresh clone produces a self-contained binary.
/// The work is done by `bpf/build.sh`, which can also be run by hand.
@main
struct BPFCompiler: BuildToolPlugin {
  func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
    let packageDirectory = context.package.directoryURL
    let bpfDirectory = packageDirectory.appending(path: "bpf")
    let abiDirectory = packageDirectory.appending(path: "Sources/CFlamespanABI/include")
    let script = bpfDirectory.appending(path: "build.sh")
    let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedBPFObjects.swift")

    // Every C source and header under bpf/ (l7.bpf.c's parts are in bpf/l7/), so that editing any of them
    // rebuilds; bpf/host/ holds the host tests, which no BPF object includes.
    var inputs = [script]
    for directory in [bpfDirectory, abiDirectory] {
      guard let walker = FileManager.default.enumerator(atPath: directory.path) else { continue }
      var names: [String] = []
      while let name = walker.nextObject() as? String {
        if name == "host" { walker.skipDescendants() }
        if name.hasSuffix(".c") || name.hasSuffix(".h") { names.append(name) }
      }
      for name in names.sorted() { inputs.append(directory.appending(path: name)) }
    }
    return [
      .buildCommand(
        displayName: "Compiling BPF programs",
        executable: URL(fileURLWithPath: "/bin/sh"),
        arguments: [
          script.path, "--swift", output.path, "--work", context.pluginWorkDirectoryURL.path,
        ],
        inputFiles: inputs,
        outputFiles: [output]
      )
    ]
  }
}
