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

    var inputs = [script]
    for directory in [bpfDirectory, abiDirectory] {
      let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
      for name in names.sorted() where name.hasSuffix(".c") || name.hasSuffix(".h") {
        inputs.append(directory.appending(path: name))
      }
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
