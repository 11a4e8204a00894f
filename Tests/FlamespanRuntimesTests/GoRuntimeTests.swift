import FlamespanModel
import FlamespanProcess
import FlamespanRuntimes
import FlamespanTestSupport
import Foundation
import Testing

/// The Go plug-in as the unwinder and symbolizer use it: attach, own, step, symbolize.
@Suite struct GoRuntimeTests {
  /// A process view of `binary` as if mapped at `base` (its text segment, file offset 0).
  static func attach(_ runtime: GoRuntime, _ binary: String, base: UInt64 = 0x40_0000)
    -> RuntimeProcess?
  {
    let status = try? FileManager.default.attributesOfItem(atPath: binary)
    let size = UInt64((status?[.size] as? Int) ?? 0x10_0000)
    let mapping = Mapping(
      start: base, limit: base + (size + 0xfff) & ~0xfff, fileOffset: 0, path: binary, kind: .file)
    return runtime.attach(pid: 1, maps: ProcessMaps(pid: 1, mappings: [mapping]))
  }

  static func words(_ values: [UInt64]) -> [UInt8] {
    values.flatMap { value in (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
  }

  /// The address after the first instruction of `body` matching `call`, and the `SUBQ $n, SP` size.
  static func callSite(
    _ body: [(address: UInt64, instruction: String)], _ call: (String) -> Bool
  ) throws -> (returnAddress: UInt64, frameSize: UInt64) {
    let index = try #require(body.firstIndex { call($0.instruction) })
    let sub = try #require(body.first { $0.instruction.hasPrefix("SUBQ $") })
    let size = try #require(UInt64(sub.instruction.dropFirst(8).prefix { $0 != "," }, radix: 16))
    return (body[index + 1].address, size)
  }

  @Test func nonGoFilesAreNotAttachedAndAreRememberedOnce() throws {
    let runtime = GoRuntime()
    let mapping = Mapping(
      start: 0x1000, limit: 0x9000, fileOffset: 0, path: "/bin/true", kind: .file)
    let maps = ProcessMaps(pid: 1, mappings: [mapping])
    #expect(runtime.attach(pid: 1, maps: maps) == nil)
    #expect(runtime.attach(pid: 2, maps: maps) == nil)
    #expect(runtime.examinedFileCount == 1)
    #expect(runtime.failures.isEmpty)
    let anonymous = Mapping(
      start: 0x1000, limit: 0x2000, fileOffset: 0, path: "[anon]", kind: .anonymous)
    #expect(runtime.attach(pid: 1, maps: ProcessMaps(pid: 1, mappings: [anonymous])) == nil)
  }

  @Test(.requires(.tool("go")), arguments: ["plain", "stripped", "pie"])
  func ownsAndNamesGoText(build: String) throws {
    let fixture = try GoFixture.shared.get()
    let path = [
      "plain": fixture.plain, "stripped": fixture.stripped, "pie": fixture.pie,
    ][build]!
    let runtime = GoRuntime()
    // The PIE is loaded elsewhere than it was linked, as the kernel would place it.
    let base: UInt64 = build == "pie" ? 0x5555_5555_4000 : 0x40_0000
    let process = try #require(Self.attach(runtime, path, base: base))
    #expect(process.runtimeName == "go")
    let symbols = try fixture.textSymbols(build == "pie" ? fixture.pie : fixture.plain)
    let link = try #require(symbols["main.middleFrame"])
    let address = link - 0x40_0000 + base
    #expect(process.owns(pc: address, mapping: nil))
    #expect(!process.owns(pc: base + 0x10, mapping: nil))  // ELF headers, not Go text
    let symbol = try #require(process.symbolize(address: address, mapping: nil))
    #expect(symbol.frameType == .go && !symbol.isJIT)
    let frame = try #require(symbol.frames.first)
    #expect(frame.function == "main.middleFrame")
    #expect(frame.file?.hasSuffix("/spin.go") == true)
    #expect(frame.line == 24)
    #expect(process.symbolize(address: base - 1, mapping: nil) == nil)
  }

  /// A stack as the fixture's running program lays it out: main.leafAdd ← main.middleFrame ← main.main
  /// ← runtime.main ← runtime.goexit, return addresses and frame sizes taken from objdump.
  @Test(.requires(.tool("go"))) func walksAHandBuiltStackToGoexit() throws {
    let fixture = try GoFixture.shared.get()
    let symbols = try fixture.textSymbols(fixture.plain)
    let process = try #require(Self.attach(GoRuntime(), fixture.stripped))
    let middle = try Self.callSite(
      try fixture.disassemble(fixture.plain, "^main\\.middleFrame$"),
      { $0 == "CALL main.leafAdd(SB)" })
    let main = try Self.callSite(
      try fixture.disassemble(fixture.plain, "^main\\.main$"), { $0 == "CALL main.middleFrame(SB)" }
    )
    let runtimeMain = try Self.callSite(
      try fixture.disassemble(fixture.plain, "^runtime\\.main$"), { $0 == "CALL AX" })
    let goexit = try #require(symbols["runtime.goexit.abi0"]) + 1

    let sp0: UInt64 = 0xc000_0400_00
    let middleSP = sp0 + 8
    let mainSP = middleSP + middle.frameSize + 8
    let runtimeMainSP = mainSP + main.frameSize + 8
    let top = runtimeMainSP + runtimeMain.frameSize + 8
    var stack = [UInt64](repeating: 0xdead, count: Int((top - sp0) / 8) + 1)
    func store(_ address: UInt64, _ value: UInt64) { stack[Int((address - sp0) / 8)] = value }
    store(sp0, middle.returnAddress)
    store(mainSP - 16, mainSP + main.frameSize - 8)  // middleFrame saved main.main's BP
    store(mainSP - 8, main.returnAddress)
    store(runtimeMainSP - 16, runtimeMainSP + runtimeMain.frameSize - 8)
    store(runtimeMainSP - 8, runtimeMain.returnAddress)
    store(top - 16, 0)
    store(top - 8, goexit)
    let memory = StackMemory(start: sp0, bytes: Self.words(stack))

    let leafPC = try #require(symbols["main.leafAdd"]) + 3
    var frame = FrameRegisters(
      pc: leafPC, sp: sp0, bp: middleSP + middle.frameSize - 8, pcIsReturnAddress: false)
    let expected: [FrameRegisters] = [
      FrameRegisters(
        pc: middle.returnAddress, sp: middleSP, bp: middleSP + middle.frameSize - 8,
        pcIsReturnAddress: true),
      FrameRegisters(
        pc: main.returnAddress, sp: mainSP, bp: mainSP + main.frameSize - 8, pcIsReturnAddress: true
      ),
      FrameRegisters(
        pc: runtimeMain.returnAddress, sp: runtimeMainSP,
        bp: runtimeMainSP + runtimeMain.frameSize - 8, pcIsReturnAddress: true),
      FrameRegisters(pc: goexit, sp: top, bp: nil, pcIsReturnAddress: true),
    ]
    for want in expected {
      #expect(process.owns(pc: frame.lookupPC, mapping: nil))
      let step = process.step(frame, memory: memory)
      #expect(step == .caller(want))
      guard case .caller(let caller) = step else { return }
      frame = caller
    }
    #expect(process.step(frame, memory: memory) == .outermost)
    let names = [leafPC, middle.returnAddress - 1, main.returnAddress - 1, goexit - 1].map {
      process.symbolize(address: $0, mapping: nil)?.frames.first?.function
    }
    #expect(names == ["main.leafAdd", "main.middleFrame", "main.main", "runtime.goexit"])
  }

  /// crypto/sha256.block uses BP as a scratch register; the walk out of it uses its SP delta and the
  /// BP its prologue saved, not the register.
  @Test(.requires(.tool("go"))) func stepsOutOfAssemblyThatClobbersBP() throws {
    let fixture = try GoFixture.shared.get()
    let process = try #require(Self.attach(GoRuntime(), fixture.stripped))
    let block = try fixture.disassemble(fixture.plain, "^crypto/sha256\\.block\\.abi0$")
    let scratch = try #require(block.first { $0.instruction.hasPrefix("MOVL 0(BP)") })
    let frameSize = try Self.callSite(block, { $0.hasPrefix("MOVQ BP,") }).frameSize
    let caller = try Self.callSite(
      try fixture.disassemble(fixture.plain, "^main\\.hashLoop$"), { $0.hasPrefix("CALL ") })
    let sp: UInt64 = 0xc000_1000_00
    var stack = [UInt64](repeating: 0, count: Int(frameSize / 8) + 1)
    stack[Int(frameSize / 8) - 1] = 0xc000_2000_00  // the caller's BP, saved by the prologue
    stack[Int(frameSize / 8)] = caller.returnAddress
    let memory = StackMemory(start: sp, bytes: Self.words(stack))
    let leaf = FrameRegisters(
      pc: scratch.address, sp: sp, bp: 0x6a09_e667, pcIsReturnAddress: false)
    #expect(
      process.step(leaf, memory: memory)
        == .caller(
          FrameRegisters(
            pc: caller.returnAddress, sp: sp + frameSize + 8, bp: 0xc000_2000_00,
            pcIsReturnAddress: true)))
    // Right after `SUBQ`, before BP is saved, BP still is the caller's.
    let afterSub = try #require(block.firstIndex { $0.instruction.hasPrefix("SUBQ $") })
    let early = FrameRegisters(
      pc: block[afterSub + 1].address, sp: sp, bp: 0xc000_3000_00, pcIsReturnAddress: false)
    guard case .caller(let fromEarly) = process.step(early, memory: memory) else {
      Issue.record("expected a caller")
      return
    }
    #expect(fromEarly.bp == 0xc000_3000_00)
    // A copy that ends before the return address: too short, not corrupt.
    let short = StackMemory(start: sp, bytes: Self.words(Array(stack.prefix(4))))
    guard case .stop(let reason, _) = process.step(leaf, memory: short) else {
      Issue.record("expected a stop")
      return
    }
    #expect(reason == .copyTooShort)
  }

  @Test(.requires(.tool("go"))) func attachesToARunningGoProgram() throws {
    let fixture = try GoFixture.shared.get()
    let child = try BackgroundProcess([fixture.stripped, "forever"])
    defer { child.stop() }
    // Until the child has exec'd, its maps are not the Go program's.
    var maps = try ProcessInspector.readMaps(pid: child.pid)
    _ = try waitUntil(seconds: 2) {
      maps = try ProcessInspector.readMaps(pid: child.pid)
      return maps.mappings.contains { $0.path == fixture.stripped }
    }
    let process = try #require(GoRuntime().attach(pid: child.pid, maps: maps))
    let main = try #require(try fixture.textSymbols(fixture.plain)["main.main"])
    #expect(process.owns(pc: main, mapping: maps.mapping(containing: main)))
    #expect(process.symbolize(address: main, mapping: nil)?.frames.first?.function == "main.main")
  }
}
