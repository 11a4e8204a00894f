import ArgumentParser
import FlamespanModel
import FlamespanSymbolizer

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

struct SymbolizeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "symbolize",
    abstract: "Turn addresses into functions, source lines and inline chains (JSON lines out).",
    discussion: """
      Reads hexadecimal addresses from standard input, one per line (with or without 0x; blank lines are \
      skipped), and writes one JSON object per line to standard output, in input order:

        $ echo 0x1139 | flamespan symbolize --binary ./a.out
        {"address":"0x1139","frames":[
          {"function":"leaf","file":"/src/a.c","line":3,"column":12},
          {"function":"main","file":"/src/a.c","line":9,"column":5}]}
        (wrapped here; each object is a single line)

      Frames are innermost first: an inlined function comes before the function it was inlined into, and \
      each outer frame's line is the call site. The last frame is the real (outermost) function.

      Addresses are ELF virtual addresses of --binary, the same numbers `llvm-symbolizer --obj=BINARY` \
      takes and `nm` prints, not runtime addresses of a running process. Debug info comes from the binary, \
      from /usr/lib/debug/.build-id, or from its .gnu_debuglink file; without DWARF only function names \
      from the symbol table are given (file null, line 0). C++, Rust and Swift names are demangled; the \
      mangled name is kept as "mangled".

      An unknown address gets "frames":[] and a "reason". A line that is not an address gets \
      {"input":…,"error":…} and the rest still runs. A missing or corrupt binary is an error (exit 1).

      Example:
        nm ./a.out | awk '$2=="T" {print $1}' | flamespan symbolize --binary ./a.out
        echo ffffffff81000000 | flamespan symbolize --kernel
      """
  )

  @Option(
    name: .long, help: ArgumentHelp("The ELF file the addresses belong to.", valueName: "path"))
  var binary: String?

  @Flag(name: .long, help: "Resolve kernel addresses through /proc/kallsyms instead of a binary.")
  var kernel = false

  @Option(
    name: .customLong("debug-dir"),
    help: ArgumentHelp(
      "A root to search for separate debug files (repeatable; default /usr/lib/debug).",
      valueName: "dir"))
  var debugDirectories: [String] = []

  func validate() throws {
    if kernel && binary != nil {
      throw ValidationError("Give either --binary or --kernel, not both.")
    }
    if !kernel && binary == nil { throw ValidationError("Missing --binary <path> (or --kernel).") }
  }

  func run() throws {
    var options = SymbolizerOptions()
    if !debugDirectories.isEmpty { options.debugDirectories = debugDirectories }
    let symbolizer = Symbolizer(options: options)
    let output = LineWriter()
    var reader = LineReader()

    // Batches keep memory flat on huge inputs while still sorting many addresses per file at once.
    let batchSize = 1 << 16
    // Only malformed lines keep their text (for the error object).
    var pending: [(line: String?, parsed: AddressLineFormat.ParsedLine)] = []
    func flush() throws {
      let addresses = pending.compactMap { entry -> UInt64? in
        if case .address(let value) = entry.parsed { return value }
        return nil
      }
      var locations: [ResolvedLocation]
      if kernel {
        locations = symbolizer.symbolizeKernel(addresses: addresses)
      } else {
        do {
          locations = try symbolizer.symbolize(binary: binary!, virtualAddresses: addresses)
        } catch {
          writeError("flamespan symbolize: \(error)")
          throw ExitCode(1)
        }
      }
      var next = 0
      for entry in pending {
        switch entry.parsed {
        case .blank: continue
        case .malformed(let message):
          output.write(AddressLineFormat.errorJSON(input: entry.line ?? "", message: message))
        case .address:
          output.writeJSON(for: locations[next])
          next += 1
        }
      }
      pending.removeAll(keepingCapacity: true)
    }

    if !kernel {
      // Fail on an unusable binary before reading any input, even when the input is empty.
      do {
        _ = try symbolizer.symbolize(binary: binary!, virtualAddresses: [])
      } catch {
        writeError("flamespan symbolize: \(error)")
        throw ExitCode(1)
      }
    }
    while let line = reader.nextLine() {
      let parsed = AddressLineFormat.parse(utf8: line)
      switch parsed {
      case .blank: continue
      case .address: pending.append((nil, parsed))
      case .malformed: pending.append((String(decoding: line, as: UTF8.self), parsed))
      }
      if pending.count >= batchSize { try flush() }
    }
    try flush()
    output.finish()
  }
}

/// Reads standard input in large blocks and splits it into lines.
private struct LineReader {
  private var buffer: [UInt8] = []
  private var start = 0
  private var finished = false

  mutating func nextLine() -> ArraySlice<UInt8>? {
    while true {
      if let newline = buffer[start...].firstIndex(of: UInt8(ascii: "\n")) {
        let line = buffer[start..<newline]
        start = newline + 1
        return line
      }
      if finished {
        guard start < buffer.count else { return nil }
        let line = buffer[start...]
        start = buffer.count
        return line
      }
      buffer.removeFirst(start)
      start = 0
      var block = [UInt8](repeating: 0, count: 1 << 16)
      let count = block.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
      if count < 0 && errno == EINTR { continue }
      if count <= 0 {
        finished = true
      } else {
        buffer.append(contentsOf: block[0..<count])
      }
    }
  }
}

/// Buffers JSON lines and writes them to standard output in large blocks.
private final class LineWriter {
  private var buffer: [UInt8] = []

  func write(_ line: String) {
    buffer.append(contentsOf: line.utf8)
    buffer.append(UInt8(ascii: "\n"))
    if buffer.count >= 1 << 16 { drain() }
  }

  func writeJSON(for location: ResolvedLocation) {
    AddressLineFormat.appendJSON(for: location, to: &buffer)
    buffer.append(UInt8(ascii: "\n"))
    if buffer.count >= 1 << 16 { drain() }
  }

  func finish() { drain() }

  private func drain() {
    var offset = 0
    while offset < buffer.count {
      let written = buffer[offset...].withUnsafeBytes {
        Glibc.write(STDOUT_FILENO, $0.baseAddress, $0.count)
      }
      if written < 0 && errno == EINTR { continue }
      guard written > 0 else { break }
      offset += written
    }
    buffer.removeAll(keepingCapacity: true)
  }
}

private func writeError(_ text: String) {
  let bytes = Array((text + "\n").utf8)
  _ = bytes.withUnsafeBytes { Glibc.write(STDERR_FILENO, $0.baseAddress, $0.count) }
}
