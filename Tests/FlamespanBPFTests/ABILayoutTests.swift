import CFlamespanABI
import FlamespanBPF
import Testing

/// The C header pins these sizes with _Static_assert; these pin Swift's view of the same structs, so the
/// two sides of the ring buffer cannot drift apart silently.
@Suite struct ABILayoutTests {
  @Test func recordSizesMatchTheCHeader() {
    #expect(MemoryLayout<fs_span_context>.size == 24)
    #expect(MemoryLayout<fs_sample>.size == 2104)
    #expect(MemoryLayout<fs_process_event>.size == 40)
    #expect(MemoryLayout<fs_aggregate_key>.size == 32)
  }

  @Test func stacksSitWhereTheBPFProgramWritesThem() {
    #expect(MemoryLayout<fs_sample>.offset(of: \fs_sample.span) == 32)
    #expect(MemoryLayout<fs_sample>.offset(of: \fs_sample.comm) == 56)
    #expect(MemoryLayout<fs_sample>.offset(of: \fs_sample.kernel_stack) == 72)
    #expect(
      MemoryLayout<fs_sample>.offset(of: \fs_sample.user_stack) == 72 + 8 * Int(FS_MAX_STACK_DEPTH))
  }

  @Test func pythonRecordsMatchTheCHeader() {
    #expect(MemoryLayout<fs_python_frame>.size == 24)
    #expect(MemoryLayout<fs_python_frame>.offset(of: \fs_python_frame.stamp) == 16)
    #expect(MemoryLayout<fs_python_frame>.offset(of: \fs_python_frame.owner) == 20)
    #expect(MemoryLayout<fs_python_frame>.offset(of: \fs_python_frame.is_entry) == 21)
    #expect(MemoryLayout<fs_python_stack>.size == 24 + 24 * Int(FS_MAX_PYTHON_FRAMES))
    #expect(MemoryLayout<fs_python_stack>.offset(of: \fs_python_stack.thread_state) == 16)
    #expect(MemoryLayout<fs_python_stack>.offset(of: \fs_python_stack.frames) == 24)
    #expect(MemoryLayout<fs_python_process>.size == 48)
    #expect(MemoryLayout<fs_python_process>.offset(of: \fs_python_process.tsd_stride) == 16)
    #expect(MemoryLayout<fs_python_process>.offset(of: \fs_python_process.tstate_cframe) == 24)
    #expect(MemoryLayout<fs_python_process>.offset(of: \fs_python_process.code_stamp) == 40)
  }

  @Test func onlineCPUListsParse() {
    #expect(OnlineCPUs.parse("0-3,6\n") == [0, 1, 2, 3, 6])
    #expect(OnlineCPUs.parse("0") == [0])
    #expect(OnlineCPUs.parse("") == [])
    #expect(OnlineCPUs.parse("3-1,x") == [])
  }
}
