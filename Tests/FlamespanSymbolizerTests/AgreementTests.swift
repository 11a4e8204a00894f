import FlamespanModel
import FlamespanTestSupport
import Foundation
import Testing

@testable import FlamespanSymbolizer

/// Compares our answers with llvm-symbolizer's on the same addresses: the whole function chain, plus the
/// innermost file:line when llvm-symbolizer knows one.
struct Agreement {
  var total = 0
  var agreeing = 0
  var examples: [String] = []

  var ratio: Double { total == 0 ? 0 : Double(agreeing) / Double(total) }

  mutating func compare(address: UInt64, ours: ResolvedLocation, reference: [ReferenceFrame]) {
    total += 1
    let referenceChain = reference.map(\.function).filter { $0 != "??" }
    let ourChain = ours.frames.map(\.function).filter { $0 != "??" }
    var same = referenceChain == ourChain
    if same, let innermost = reference.first, innermost.line != 0 {
      let ourInnermost = ours.frames.first
      same = ourInnermost?.file == innermost.file && ourInnermost?.line == innermost.line
    }
    if same {
      agreeing += 1
    } else if examples.count < 10 {
      let ourText = ours.frames.map { "\($0.function) @ \($0.file ?? "??"):\($0.line)" }
      examples.append(
        "0x\(String(address, radix: 16)): ours \(ourText) \(ours.unknownReason ?? "") vs llvm \(reference)"
      )
    }
  }
}

@Suite struct AgreementTests {
  static func compile(_ compiler: String, flags: [String], into directory: URL, name: String) throws
    -> String
  {
    let output = directory.appendingPathComponent(name).path
    _ = try Run.checked(
      [compiler] + flags + [
        "-g", fixturesDirectory.appendingPathComponent("inline_chains.c").path, "-o", output,
      ])
    return output
  }

  static func agreement(binary: String, perSymbol: Int, dynamic: Bool = false) throws -> Agreement {
    let symbols = try functionSymbols(of: binary, dynamic: dynamic)
    #expect(!symbols.isEmpty)
    let addresses = randomAddresses(in: symbols, perSymbol: perSymbol, seed: 0x5eed)
    let reference = try referenceSymbolize(binary: binary, addresses: addresses)
    try #require(reference.count == addresses.count)
    let ours = try Symbolizer().symbolize(binary: binary, virtualAddresses: addresses)
    var agreement = Agreement()
    for (index, address) in addresses.enumerated() {
      agreement.compare(address: address, ours: ours[index], reference: reference[index])
    }
    return agreement
  }

  @Test(
    "C fixture with inline chains agrees with llvm-symbolizer",
    .requires(.llvmSymbolizer, .tool("cc"), .tool("clang")),
    arguments: [
      ("cc", ["-O2"]), ("cc", ["-O0"]), ("clang", ["-O2"]), ("cc", ["-O2", "-gdwarf-4"]),
    ])
  func cFixture(compiler: String, flags: [String]) throws {
    let compilerPath = try #require(TestEnvironment.which(compiler))
    let directory = try TestEnvironment.temporaryDirectory("sym")
    defer { try? FileManager.default.removeItem(at: directory) }
    let binary = try Self.compile(compilerPath, flags: flags, into: directory, name: "fixture")
    let agreement = try Self.agreement(binary: binary, perSymbol: 200)
    #expect(agreement.total > 1000)
    #expect(
      agreement.ratio >= 0.99, "\(agreement.agreeing)/\(agreement.total): \(agreement.examples)")
  }

  @Test("inline frames are reported innermost first with call-site lines", .requires(.tool("cc")))
  func inlineChainShape() throws {
    let cc = "cc"
    let directory = try TestEnvironment.temporaryDirectory("sym")
    defer { try? FileManager.default.removeItem(at: directory) }
    let binary = try Self.compile(cc, flags: ["-O2"], into: directory, name: "fixture")
    let symbols = try functionSymbols(of: binary)
    let classify = try #require(symbols.first { $0.name == "classify" })
    let addresses = Array(classify.address..<(classify.address + classify.size))
    let locations = try Symbolizer().symbolize(binary: binary, virtualAddresses: addresses)
    let chains = locations.map { $0.frames.map(\.function) }
    // Somewhere in classify, mix is inlined into hash_bytes, into hash_string, into classify.
    #expect(chains.contains(["mix", "hash_bytes", "hash_string", "classify"]))
    for location in locations where location.frames.count > 1 {
      #expect(location.frames.last?.function == "classify")
      for frame in location.frames {
        #expect(frame.file?.hasSuffix("inline_chains.c") == true)
        #expect(frame.line > 0)
      }
    }
  }

  @Test(
    "libc without debug info: symbol table names agree with llvm-symbolizer",
    .requires(.llvmSymbolizer, .systemLibc))
  func libc() throws {
    let libc = systemLibc
    let agreement = try Self.agreement(binary: libc, perSymbol: 3, dynamic: true)
    #expect(agreement.total > 3000)
    #expect(
      agreement.ratio >= 0.99, "\(agreement.agreeing)/\(agreement.total): \(agreement.examples)")
  }
}
