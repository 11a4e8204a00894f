import FlamespanModel
import FlamespanProcess
import FlamespanTestSupport
import FlamespanUnwinder
import Foundation

/// A stack captured by the `capture.c` fixture: registers, stack bytes and the maps of the process that
/// took it, plus the fixture's symbol table so frames can be named exactly.
struct FixtureCapture {
  var registers: UserRegisters
  var stack: [UInt8]
  var maps: ProcessMaps
  var binary: String
  var symbols: [(name: String, start: UInt64, end: UInt64)]

  /// Compiles capture.c with `flags` (no frame pointers by default) into a fresh directory.
  static func build(flags: [String] = ["-O2", "-g", "-fomit-frame-pointer"]) throws -> String {
    let directory = try TestEnvironment.temporaryDirectory("unwind-fixture")
    let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .appendingPathComponent("Fixtures/capture.c").path
    let binary = directory.appendingPathComponent("capture").path
    let result = try Run.command(
      ["cc"] + flags + ["-Wl,--build-id=sha1", "-o", binary, source])
    guard result.status == 0 else { throw TestFailure("cc failed: \(result.stderr)") }
    return binary
  }

  static func run(_ binary: String, mode: String) throws -> FixtureCapture {
    let output = try TestEnvironment.temporaryDirectory("unwind-capture")
    let result = try Run.command([binary, output.path, mode])
    guard result.status == 0 else {
      throw TestFailure("\(binary) \(mode) exited \(result.status): \(result.stderr)")
    }
    let registerBytes = try [UInt8](Data(contentsOf: output.appendingPathComponent("registers")))
    func word(_ index: Int) -> UInt64 {
      (0..<8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64(registerBytes[index * 8 + $1]) }
    }
    let stack = try [UInt8](Data(contentsOf: output.appendingPathComponent("stack")))
    let mapsText = try String(
      contentsOf: output.appendingPathComponent("maps"), encoding: .utf8)
    let maps = ProcessInspector.parseMaps(mapsText, pid: 0)
    return FixtureCapture(
      registers: UserRegisters(ip: word(0), sp: word(1), bp: word(2)), stack: stack, maps: maps,
      binary: binary, symbols: try symbols(of: binary))
  }

  /// Function symbols with sizes, from `nm -S` (link-time addresses).
  static func symbols(of binary: String) throws -> [(name: String, start: UInt64, end: UInt64)] {
    let result = try Run.command(["nm", "-S", "--defined-only", binary])
    var symbols: [(String, UInt64, UInt64)] = []
    for line in result.stdout.split(separator: "\n") {
      let fields = line.split(separator: " ")
      guard fields.count == 4, "tTwW".contains(fields[2]),
        let start = UInt64(fields[0], radix: 16), let size = UInt64(fields[1], radix: 16)
      else { continue }
      symbols.append((String(fields[3]), start, start + size))
    }
    return symbols
  }

  /// Names each frame of `stack` that lies in the fixture binary by its symbol, others by the basename of
  /// their file ("libc.so.6"). Return addresses are looked up one byte back, as the profiler does.
  func names(_ stack: UnwoundStack) -> [String] {
    stack.addresses.enumerated().map { index, address in
      let lookup = index == 0 ? address : address - 1
      guard let mapping = maps.mapping(containing: lookup) else { return "?" }
      guard mapping.path == binary else {
        return String(mapping.path.split(separator: "/").last ?? "?")
      }
      // PIE: the first mapping of the binary has file offset 0 and link address 0.
      let base = maps.mappings.filter { $0.path == binary }.map { $0.start - $0.fileOffset }.min()!
      let link = lookup - base
      return symbols.first { link >= $0.start && link < $0.end }?.name ?? "?"
    }
  }
}
