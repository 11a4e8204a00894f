import FlamespanTestSupport
import Foundation

/// The reference: llvm-symbolizer, preferring the one shipped with the Swift toolchain.
let llvmSymbolizer: String? = {
  let toolchain = TestEnvironment.which("swift").map {
    URL(fileURLWithPath: $0).resolvingSymlinksInPath().deletingLastPathComponent().path
  }
  return TestEnvironment.which("llvm-symbolizer", preferring: toolchain.map { [$0] } ?? [])
}()

/// The system's C library, which several suites symbolize as a large real binary without debug info.
let systemLibc = "/lib/x86_64-linux-gnu/libc.so.6"

extension Need {
  static let llvmSymbolizer = Need.check {
    FlamespanSymbolizerTests.llvmSymbolizer == nil
      ? "llvm-symbolizer is not installed (scripts/setup.sh installs it)" : nil
  }
  static let systemLibc = Need.file(FlamespanSymbolizerTests.systemLibc)
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
  let text = try Run.checked(["nm"] + (dynamic ? ["-D"] : []) + ["-S", "--defined-only", binary])
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
  guard let llvmSymbolizer else { throw TestFailure("llvm-symbolizer is not installed") }
  let input = addresses.map { "0x" + String($0, radix: 16) }.joined(separator: "\n") + "\n"
  let output = try Run.checked([llvmSymbolizer, "--obj=" + binary], input: input)
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
