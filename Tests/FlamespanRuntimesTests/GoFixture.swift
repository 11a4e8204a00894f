import FlamespanELF
import FlamespanRuntimes
import FlamespanTestSupport
import Foundation
import Testing

/// The fixture Go program (Fixtures/spin.go) built once per test run: normally, stripped with
/// `-ldflags='-s -w'`, and as a PIE; plus what `go tool` says about it, to compare against.
struct GoFixture: Sendable {
  let directory: URL
  let plain: String
  let stripped: String
  let pie: String

  /// Built on first use; the tests that use it require go (`.requires(.tool("go"))`).
  static let shared: Result<GoFixture, TestFailure> = {
    do { return .success(try build()) } catch let error as TestFailure {
      return .failure(error)
    } catch { return .failure(TestFailure("\(error)")) }
  }()

  private static func build() throws -> GoFixture {
    let directory = try TestEnvironment.temporaryDirectory("go")
    let source = TestEnvironment.packageRoot.appendingPathComponent(
      "Tests/FlamespanRuntimesTests/Fixtures/spin.go")
    try FileManager.default.copyItem(
      at: source, to: directory.appendingPathComponent("spin.go"))
    func build(_ name: String, _ flags: [String]) throws -> String {
      let output = directory.appendingPathComponent(name).path
      let result = try Run.command(
        ["go", "build"] + flags + ["-o", output, "spin.go"],
        environment: goEnvironment(directory), currentDirectory: directory)
      guard result.status == 0 else { throw TestFailure("go build \(flags): \(result.stderr)") }
      return output
    }
    return GoFixture(
      directory: directory, plain: try build("spin", []),
      stripped: try build("spin-stripped", ["-ldflags=-s -w"]),
      pie: try build("spin-pie", ["-buildmode=pie"]))
  }

  /// A private cache and home, so the build neither needs nor touches the user's.
  static func goEnvironment(_ directory: URL) -> [String: String] {
    [
      "HOME": directory.path, "GOCACHE": directory.appendingPathComponent("cache").path,
      "GOPATH": directory.appendingPathComponent("gopath").path, "GOFLAGS": "",
      "GO111MODULE": "off", "CGO_ENABLED": "0",
    ]
  }

  func goTool(_ arguments: [String], input: String? = nil) throws -> String {
    let result = try Run.command(
      ["go", "tool"] + arguments, input: input, environment: Self.goEnvironment(directory))
    guard result.status == 0 else { throw TestFailure("go tool \(arguments): \(result.stderr)") }
    return result.stdout
  }

  /// Text symbols from `go tool nm`: name → address.
  func textSymbols(_ binary: String) throws -> [String: UInt64] {
    var symbols: [String: UInt64] = [:]
    for line in try goTool(["nm", binary]).split(separator: "\n") {
      let fields = line.split(separator: " ", omittingEmptySubsequences: true)
      guard fields.count >= 3, fields[1] == "T", let address = UInt64(fields[0], radix: 16) else {
        continue
      }
      symbols[String(fields[2])] = address
    }
    return symbols
  }

  /// Instructions of the functions matching `pattern` from `go tool objdump`.
  func disassemble(_ binary: String, _ pattern: String) throws -> [(
    address: UInt64, instruction: String
  )] {
    try goTool(["objdump", "-s", pattern, binary]).split(separator: "\n").compactMap { line in
      let fields = line.split(separator: "\t", omittingEmptySubsequences: true).map {
        $0.trimmingCharacters(in: .whitespaces)
      }
      guard fields.count >= 4, fields[1].hasPrefix("0x"),
        let address = UInt64(fields[1].dropFirst(2), radix: 16)
      else { return nil }
      return (address, fields[3])
    }
  }

  /// `go tool addr2line` for `addresses`: (function, file, line) each.
  func addr2line(_ binary: String, _ addresses: [UInt64]) throws -> [(
    function: String, file: String, line: Int
  )] {
    let input = addresses.map { "0x" + String($0, radix: 16) }.joined(separator: "\n") + "\n"
    let lines = try goTool(["addr2line", binary], input: input).split(separator: "\n").map(
      String.init)
    guard lines.count == addresses.count * 2 else {
      throw TestFailure("addr2line gave \(lines.count) lines for \(addresses.count) addresses")
    }
    return stride(from: 0, to: lines.count, by: 2).map { index in
      let position = lines[index + 1]
      let colon = position.lastIndex(of: ":")!
      return (
        lines[index], String(position[..<colon]),
        Int(position[position.index(after: colon)...]) ?? -1
      )
    }
  }

  /// What the DWARF of `binary` says is at each of `addresses`, inlined frames included, innermost
  /// first, from `llvm-symbolizer --inlining`: (function, file, line) each.
  static func dwarfChains(_ binary: String, _ addresses: [UInt64]) throws -> [[(
    function: String, file: String, line: Int
  )]] {
    let input = addresses.map { "0x" + String($0, radix: 16) }.joined(separator: "\n") + "\n"
    let result = try Run.command(
      ["llvm-symbolizer", "--inlining", "--obj=\(binary)"], input: input)
    guard result.status == 0 else { throw TestFailure("llvm-symbolizer: \(result.stderr)") }
    let groups = result.stdout.components(separatedBy: "\n\n").map {
      $0.split(separator: "\n").map(String.init)
    }.filter { !$0.isEmpty }
    guard groups.count == addresses.count else {
      throw TestFailure(
        "llvm-symbolizer gave \(groups.count) answers for \(addresses.count) addresses")
    }
    return groups.map { lines in
      stride(from: 0, to: lines.count - 1, by: 2).map { index in
        // file:line:column
        let parts = lines[index + 1].split(separator: ":", omittingEmptySubsequences: false)
        let line = parts.count >= 3 ? Int(parts[parts.count - 2]) ?? -1 : -1
        let file = parts.count >= 3 ? parts.dropLast(2).joined(separator: ":") : lines[index + 1]
        return (lines[index], file, line)
      }
    }
  }

  /// The `.gopclntab` section's bytes of `binary`.
  static func tableBytes(_ binary: String) throws -> [UInt8] {
    let file = try #require(FileBytes(path: binary))
    let elf = try ELFFile(read: file.read)
    let section = try #require(
      elf.section(named: ".gopclntab") ?? elf.section(named: ".data.rel.ro.gopclntab"))
    return try #require(file.read(section.fileOffset, Int(section.size)))
  }

  static func loadBinary(_ path: String) throws -> GoBinary {
    guard case .go(let binary) = GoBinary.load(path: path) else {
      throw TestFailure("\(path) did not load as a Go binary")
    }
    return binary
  }
}
