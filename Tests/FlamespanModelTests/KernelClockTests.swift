import FlamespanModel
import Testing

@Suite struct KernelClockTests {
  @Test func convertsMonotonicTimesByTheOffset() {
    let clock = KernelClock(monotonicToUnixNanos: 1_700_000_000_000_000_000)
    #expect(clock.unixNanos(monotonic: 1_000) == 1_700_000_000_000_001_000)
    // A kernel time past Int64 is clamped rather than trapping.
    #expect(KernelClock(monotonicToUnixNanos: 0).unixNanos(monotonic: .max) == .max)
  }

  @Test func nowAgreesWithTheWallClock() {
    let clock = KernelClock.now()
    let converted = clock.unixNanos(monotonic: KernelClock.monotonicNanos())
    let wall = KernelClock.unixNanos()
    // Both readings are taken within microseconds; a wrong sign or unit would be off by years.
    #expect(abs(wall - converted) < 50_000_000, "wall \(wall), converted \(converted)")
    #expect(wall > 1_600_000_000_000_000_000)
  }
}
