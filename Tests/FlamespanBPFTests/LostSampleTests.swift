import FlamespanBPF
import FlamespanTestSupport
import Foundation
import Testing

/// A ring buffer too small for the sample rate loses samples; every loss must be counted, none silent.
@Suite(.serialized) struct LostSampleTests {
  @Test(.requires(.bpf)) func aFullRingBufferIsCountedNotSilent() throws {
    // One page holds a single 2 KiB sample; at 999 Hz with nobody reading, the rest must overflow.
    let sampler = try CPUSampler(
      configuration: SamplerConfiguration(frequency: 999, pids: [getpid()], ringBufferBytes: 4096))
    defer { sampler.close() }
    let spinner = Spinner()
    let thread = Thread { spinner.run() }
    thread.start()
    Thread.sleep(forTimeInterval: 0.5)
    spinner.stop()
    _ = spinner.waitForResult()
    // Other threads of this process keep running: detach first, so that no sample is submitted between
    // the last drain and the counters read after it.
    sampler.detach()

    var received = 0
    while try sampler.poll(
      timeoutMilliseconds: 10,
      handler: { event in
        if case .sample = event { received += 1 }
      }) > 0
    {}
    let counters = sampler.counters()
    #expect(counters.ringBufferFull > 0, "nothing was counted as lost: \(counters)")
    #expect(counters.lostSamples >= counters.ringBufferFull)
    // What reached user space is exactly what the kernel says it submitted.
    #expect(
      UInt64(received) == counters.samples,
      "received \(received), kernel submitted \(counters.samples)")
  }
}
