import CFlamespanABI
import FlamespanBPF
import FlamespanTestSupport
import Foundation
import Testing

/// The DWARF-mode record: its header layout pinned against the C header, and the real sampler copying
/// this process's stack.
@Suite(.serialized) struct UnwindLayoutTests {
  @Test func sampleWithStackLayoutMatchesTheCHeader() {
    #expect(MemoryLayout<fs_user_regs>.size == 24)
    #expect(MemoryLayout<fs_sample_with_stack>.offset(of: \fs_sample_with_stack.sample) == 0)
    #expect(MemoryLayout<fs_sample_with_stack>.offset(of: \fs_sample_with_stack.regs) == 2104)
    #expect(MemoryLayout<fs_sample_with_stack>.offset(of: \fs_sample_with_stack.python) == 2128)
    #expect(
      MemoryLayout<fs_sample_with_stack>.offset(of: \fs_sample_with_stack.stack_copy_bytes) == 3688)
    #expect(
      MemoryLayout<fs_sample_with_stack>.offset(of: \fs_sample_with_stack.stack_copy_error) == 3692)
    #expect(Int(FS_SAMPLE_WITH_STACK_HEADER_BYTES) == 3696)
    #expect(SamplerConfiguration.maximumUserStackCopyBytes == 65536)
  }

  @Test(.requires(.bpf)) func copiesTheUserStackWithTheRegistersOfABusyThread() throws {
    let me = getpid()
    let sampler = try CPUSampler(
      configuration: SamplerConfiguration(frequency: 199, pids: [me], userStackCopyBytes: 8192))
    defer { sampler.close() }

    let spinner = Spinner()
    let thread = Thread { spinner.run() }
    thread.start()
    var samples: [RawSample] = []
    let deadline = Date().addingTimeInterval(1.0)
    while Date() < deadline {
      try sampler.poll(timeoutMilliseconds: 100) { event in
        if case .sample(let sample) = event { samples.append(sample) }
      }
    }
    spinner.stop()
    let (tid, _) = spinner.waitForResult()
    let spinnerSamples = samples.filter { $0.tid == tid }
    #expect(!spinnerSamples.isEmpty)
    for sample in spinnerSamples {
      guard let copy = sample.userStackCopy else {
        Issue.record("a DWARF-mode sample came without its stack copy")
        continue
      }
      // Either the whole configured size was copied, or the copy stopped at the top of the stack mapping
      // and says so.
      #expect(copy.bytes.count > 0 && copy.bytes.count <= 8192)
      #expect(copy.bytes.count == 8192 || copy.stopErrno != nil)
      #expect(copy.registers.sp != 0 && copy.registers.ip != 0)
      // The frame-pointer stack is still sent; its leaf is the same instruction the registers name.
      #expect(sample.userStack.first == copy.registers.ip)
    }
    #expect(sampler.counters().ringBufferFull == 0)
    // The filter also takes in what this test process forks (other suites' children run beside us); a child
    // caught mid-exec or mid-exit may have no readable stack. None of the failures may be the spinner's.
    let otherSamples = samples.filter { $0.tid != tid }.count
    #expect(sampler.counters().stackCopyFailed <= UInt64(otherSamples))
  }

  @Test func rejectsAStackCopyLargerThanTheRecord() {
    #expect(throws: BPFError.self) {
      _ = try CPUSampler(
        configuration: SamplerConfiguration(
          frequency: 99, pids: [getpid()], userStackCopyBytes: 1 << 20))
    }
  }

  @Test(.requires(.bpf), arguments: [8, 4096, 65536])
  func theVerifierAcceptsEveryCopySize(bytes: Int) throws {
    // The copy size is a load-time constant, so the verifier checks each size's loop bounds anew.
    let sampler = try CPUSampler(
      configuration: SamplerConfiguration(
        frequency: 99, pids: [getpid()], userStackCopyBytes: bytes))
    #expect(!sampler.sampledCPUs.isEmpty)
    sampler.close()
  }
}
