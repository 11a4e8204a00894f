import FlamespanModel
import FlamespanProcess
import FlamespanTestSupport
import FlamespanUnwinder
import Foundation
import Testing

/// Frames that a sampler can interrupt but a capture at a call site never shows: PLT stubs (CFA by
/// expression, depending on where in the stub the thread is) and the vDSO (CFI only in memory).
@Suite struct EdgeCaseTests {
  /// Stack bytes holding `words`, little-endian.
  static func stack(_ words: [UInt64]) -> [UInt8] {
    words.flatMap { word in (0..<8).map { UInt8(truncatingIfNeeded: word >> (8 * $0)) } }
  }

  @Test func pltStubUsesTheLinkersCFAExpression() throws {
    let binary = try FixtureCapture.build()
    let capture = try FixtureCapture.run(binary, mode: "deep")
    let (pltOffset, pltSize) = try CorruptCFITests.sectionRange(".plt", in: binary)
    #expect(pltSize >= 32)
    guard let text = capture.maps.mappings.first(where: { $0.path == binary }) else {
      Issue.record("the fixture's code is not in its maps")
      return
    }
    // .plt's link address equals its file offset in these PIE fixtures (readelf shows both).
    let base = text.start - text.fileOffset
    let secondEntry = base + UInt64(pltOffset) + 16
    let returnAddress = capture.registers.ip  // any address inside the fixture's code
    let sp: UInt64 = 0x7fff_0000_0000
    let unwinder = Unwinder()

    // At the stub's first instruction (jmp *GOT) nothing is pushed yet: the return address is at sp.
    let atJump = unwinder.unwind(
      registers: UserRegisters(ip: secondEntry, sp: sp, bp: 0),
      stack: Self.stack([returnAddress, 0]), stackStart: sp, maps: capture.maps)
    #expect(Array(atJump.addresses.prefix(2)) == [secondEntry, returnAddress])

    // After `push $index` (offset 11 in the entry) the return address sits one word higher.
    let afterPush = unwinder.unwind(
      registers: UserRegisters(ip: secondEntry + 11, sp: sp, bp: 0),
      stack: Self.stack([0x1234, returnAddress, 0]), stackStart: sp, maps: capture.maps)
    #expect(Array(afterPush.addresses.prefix(2)) == [secondEntry + 11, returnAddress])
  }

  @Test func vdsoFramesUseTheVDSOsOwnCFI() throws {
    // This test process's vDSO is the same image the kernel maps into every process.
    let maps = try ProcessInspector.readMaps(pid: getpid())
    guard let vdso = maps.mappings.first(where: { $0.kind == .vdso }) else {
      Issue.record("no [vdso] in this process's maps")
      return
    }
    guard let symbol = Self.vdsoFunction(named: "__vdso_clock_gettime") else {
      Issue.record("clock_gettime not found in the vDSO")
      return
    }
    #expect(vdso.contains(symbol))
    // At a function's entry the return address is at sp; 0 there marks the outermost frame.
    let sp: UInt64 = 0x7fff_0000_0000
    let result = Unwinder().unwind(
      registers: UserRegisters(ip: symbol, sp: sp, bp: 0), stack: Self.stack([0]),
      stackStart: sp, maps: maps)
    #expect(result.end == .reachedEnd, "\(result.end.description)")
    #expect(result.addresses == [symbol])
  }

  static func vdsoFunction(named name: String) -> UInt64? {
    guard let handle = dlopen("linux-vdso.so.1", RTLD_LAZY | RTLD_NOLOAD),
      let address = dlsym(handle, name)
    else { return nil }
    return UInt64(UInt(bitPattern: address))
  }

  @Test func threadWithoutAStackCopyIsTruncatedAtTheLeaf() throws {
    let binary = try FixtureCapture.build()
    let capture = try FixtureCapture.run(binary, mode: "deep")
    // The sampler could not read the stack where sp pointed (a thread whose stack is not mapped there).
    let result = Unwinder().unwind(
      registers: capture.registers, stack: [], stackStart: capture.registers.sp, maps: capture.maps)
    #expect(result.addresses == [capture.registers.ip])
    guard case .truncated = result.end else {
      Issue.record("ended with \(result.end.description)")
      return
    }
  }
}
