import FlamespanTestSupport
import Foundation

/// Runs a tool and returns its standard output; throws with its standard error when it fails.
func run(_ executable: String, _ arguments: [String], input: String? = nil) throws -> String {
  let process = Process()
  process.executableURL = URL(fileURLWithPath: executable)
  process.arguments = arguments
  let output = Pipe()
  let errors = Pipe()
  process.standardOutput = output
  process.standardError = errors
  let inputPipe = Pipe()
  if input != nil { process.standardInput = inputPipe }
  try process.run()
  if let input {
    // Write from another thread: a large batch would fill the pipe while the tool's output is unread.
    let data = Data(input.utf8)
    let writer = Thread {
      inputPipe.fileHandleForWriting.write(data)
      try? inputPipe.fileHandleForWriting.close()
    }
    writer.start()
  }
  let data = output.fileHandleForReading.readDataToEndOfFile()
  let errorData = errors.fileHandleForReading.readDataToEndOfFile()
  process.waitUntilExit()
  guard process.terminationStatus == 0 else {
    throw ToolFailure(
      command: ([executable] + arguments).joined(separator: " "),
      stderr: String(decoding: errorData, as: UTF8.self))
  }
  return String(decoding: data, as: UTF8.self)
}

struct ToolFailure: Error, CustomStringConvertible {
  var command: String
  var stderr: String
  var description: String { "\(command) failed: \(stderr)" }
}

/// Finds a tool on PATH (or a fixed list of places), nil when absent.
func findTool(_ name: String, preferring directories: [String] = []) -> String? {
  let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
  for directory in directories + path.split(separator: ":").map(String.init) {
    let candidate = directory + "/" + name
    if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
  }
  return nil
}

/// The reference: llvm-symbolizer, preferring the one shipped with the Swift toolchain.
let llvmSymbolizer: String? = {
  var preferred: [String] = []
  if let swift = findTool("swift") {
    let resolved = URL(fileURLWithPath: swift).resolvingSymlinksInPath().deletingLastPathComponent()
      .path
    preferred.append(resolved)
  }
  return findTool("llvm-symbolizer", preferring: preferred)
}()

/// A fresh directory under the system temporary directory, removed by the caller.
func makeTemporaryDirectory() throws -> URL {
  let url = FileManager.default.temporaryDirectory.appendingPathComponent(
    "flamespan-sym-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  return url
}

/// The fixture sources live with the benchmark, which builds the same programs.
let fixturesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
  .appendingPathComponent("../../bench/symbolizer/fixtures").standardized

struct SizedSymbol {
  var name: String
  var address: UInt64
  var size: UInt64
}

/// Code symbols with a size, from `nm -S --defined-only`.
func functionSymbols(of binary: String, dynamic: Bool = false) throws -> [SizedSymbol] {
  let nm = findTool("nm") ?? "/usr/bin/nm"
  let text = try run(nm, (dynamic ? ["-D"] : []) + ["-S", "--defined-only", binary])
  return text.split(separator: "\n").compactMap { line in
    let fields = line.split(separator: " ")
    guard fields.count == 4, "tTwWiI".contains(fields[2]),
      let address = UInt64(fields[0], radix: 16),
      let size = UInt64(fields[1], radix: 16), size > 0
    else { return nil }
    return SizedSymbol(name: String(fields[3]), address: address, size: size)
  }
}

/// `count` random addresses inside each symbol.
func randomAddresses(in symbols: [SizedSymbol], perSymbol count: Int, seed: UInt64) -> [UInt64] {
  var generator = SplitMix(seed: seed)
  var addresses: [UInt64] = []
  for symbol in symbols {
    for _ in 0..<count {
      addresses.append(symbol.address + UInt64.random(in: 0..<symbol.size, using: &generator))
    }
  }
  return addresses
}

/// One llvm-symbolizer answer: (function, file, line) per frame, innermost first.
struct ReferenceFrame: Equatable, CustomStringConvertible {
  var function: String
  var file: String
  var line: Int
  var description: String { "\(function) @ \(file):\(line)" }
}

/// Runs llvm-symbolizer on a batch and splits its default output (name line, file:line:column line, per
/// frame; a blank line between addresses).
func referenceSymbolize(binary: String, addresses: [UInt64]) throws -> [[ReferenceFrame]] {
  guard let llvmSymbolizer else {
    throw ToolFailure(command: "llvm-symbolizer", stderr: "not installed")
  }
  let input = addresses.map { "0x" + String($0, radix: 16) }.joined(separator: "\n") + "\n"
  let output = try run(llvmSymbolizer, ["--obj=" + binary], input: input)
  var blocks: [[ReferenceFrame]] = []
  var lines: [Substring] = []
  for line in output.split(separator: "\n", omittingEmptySubsequences: false) {
    if line.isEmpty {
      if !lines.isEmpty {
        blocks.append(frames(from: lines))
        lines = []
      }
    } else {
      lines.append(line)
    }
  }
  if !lines.isEmpty { blocks.append(frames(from: lines)) }
  return blocks
}

private func frames(from lines: [Substring]) -> [ReferenceFrame] {
  stride(from: 0, to: lines.count - 1, by: 2).map { index in
    let location = lines[index + 1].split(separator: ":")
    let file =
      location.count >= 3 ? location.dropLast(2).joined(separator: ":") : String(lines[index + 1])
    let line = location.count >= 3 ? Int(location[location.count - 2]) ?? 0 : 0
    return ReferenceFrame(function: String(lines[index]), file: file, line: line)
  }
}
