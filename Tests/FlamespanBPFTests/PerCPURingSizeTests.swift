import Glibc
import Testing

@testable import FlamespanBPF

/// The L7 tracer shares its ring-buffer bytes out as one ring per CPU: each a power of two (the kernel
/// refuses other sizes), at least a page, and together no more than asked for unless a page each is more.
struct PerCPURingSizeTests {
  static let page = Int(sysconf(Int32(_SC_PAGESIZE)))

  @Test(arguments: [
    (16 << 20, 2, 8 << 20), (16 << 20, 3, 4 << 20), (16 << 20, 64, 256 << 10),
    (2 << 20, 6, 256 << 10), (3 << 20, 1, 2 << 20),
  ])
  func sharesArePowersOfTwoWithinTheTotal(total: Int, cpus: Int, expected: Int) {
    let share = PerCPURings.bytesPerCPU(totalBytes: total, cpus: cpus)
    #expect(share == expected)
    #expect(share & (share - 1) == 0)
    #expect(share * cpus <= total)
  }

  @Test func aShareNeverFallsBelowAPage() {
    #expect(PerCPURings.bytesPerCPU(totalBytes: Self.page, cpus: 8) == Self.page)
    #expect(PerCPURings.bytesPerCPU(totalBytes: 1, cpus: 1) == Self.page)
    #expect(PerCPURings.bytesPerCPU(totalBytes: 1 << 20, cpus: 0) == 1 << 20)
  }
}
