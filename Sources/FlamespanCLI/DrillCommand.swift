import ArgumentParser
import FlamespanExport
import FlamespanModel

struct DrillCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "drill",
    abstract: "Keep the samples of one trace, span or span name from a profile and write them out.",
    discussion: """
      Reads a profile written by `flamespan record` (pprof .pb.gz, or OTLP .otlp.pb) and writes the \
      samples that were taken inside the chosen spans, in any output format (chosen by extension, as \
      for record: .pb.gz, .otlp.pb, .folded, .svg). Filters combine: a sample must match all given. \
      Without a filter the whole profile is converted.

      Examples:
        flamespan spans profile.pb.gz                                   find the heavy spans
        flamespan drill --trace 4bf92f3577b34da6a3ce929d0e0e4736 profile.pb.gz -o slow.svg
        flamespan drill --span-name 'GET /checkout' profile.pb.gz -o checkout.folded
        flamespan drill profile.otlp.pb -o profile.pb.gz                format conversion
      """
  )

  @Option(
    name: .customLong("trace"),
    help: ArgumentHelp("Trace id: 32 hex characters.", valueName: "id"))
  var traceID: String?

  @Option(
    name: .customLong("span"), help: ArgumentHelp("Span id: 16 hex characters.", valueName: "id"))
  var spanID: String?

  @Option(
    name: .customLong("span-name"),
    help: ArgumentHelp("Span name, exactly (such as 'GET /checkout').", valueName: "name"))
  var spanName: String?

  @Argument(
    help: ArgumentHelp("The profile to read (.pb.gz, .pb or .otlp.pb).", valueName: "input"))
  var input: String

  @Option(
    name: [.customShort("o"), .long],
    help: ArgumentHelp(
      "Where to write (repeatable): .pb.gz, .otlp.pb, .folded or .svg.", valueName: "path"))
  var output: [String] = []

  func validate() throws {
    if output.isEmpty { throw ValidationError("Missing --output <path>.") }
    do {
      _ = try makeFilter()
    } catch {
      throw ValidationError(error.description)
    }
    for path in output {
      do {
        try ProfileExporter.validateOutputPath(path)
      } catch {
        throw ValidationError(error.description)
      }
    }
  }

  func run() throws {
    let filter = try makeFilter()
    let profile: Profile
    do {
      profile = try ProfileReader.read(from: input)
    } catch {
      Console.error("flamespan drill: \(error.description)")
      throw ExitCode(1)
    }
    let kept = filter.apply(to: profile)
    Console.error(
      "Kept \(kept.samples.count) of \(profile.samples.count) stacks, "
        + "\(kept.totalCount) of \(profile.totalCount) samples")
    if !filter.isEmpty && kept.samples.isEmpty {
      Console.error("flamespan drill: no sample matches; the outputs will be empty profiles")
    }
    var failed = false
    for path in output {
      do {
        try ProfileExporter.write(kept, to: path, title: title(for: filter))
        Console.error("Wrote \(path)")
      } catch {
        Console.error("flamespan drill: cannot write \(path): \(error.description)")
        failed = true
      }
    }
    if failed { throw ExitCode(1) }
  }

  private func makeFilter() throws(ProfileFilter.InvalidID) -> ProfileFilter {
    try ProfileFilter(traceID: traceID, spanID: spanID, spanName: spanName)
  }

  private func title(for filter: ProfileFilter) -> String {
    var parts: [String] = []
    if let spanName { parts.append(spanName) }
    if let traceID { parts.append("trace \(traceID.lowercased())") }
    if let spanID { parts.append("span \(spanID.lowercased())") }
    return parts.isEmpty ? "CPU profile" : "CPU profile: " + parts.joined(separator: ", ")
  }
}
