import CFlamespanABI
import Testing

/// Pins Swift's view of the L7 tracer's ring-buffer record to the C header's _Static_assert.
@Suite struct L7LayoutTests {
  @Test func exchangeRecordMatchesTheCHeader() {
    #expect(MemoryLayout<fs_l7_exchange>.size == 248)
    #expect(MemoryLayout<fs_l7_exchange>.offset(of: \fs_l7_exchange.generation) == 16)
    #expect(MemoryLayout<fs_l7_exchange>.offset(of: \fs_l7_exchange.trace_id) == 56)
    #expect(MemoryLayout<fs_l7_exchange>.offset(of: \fs_l7_exchange.peer_address) == 88)
    #expect(MemoryLayout<fs_l7_exchange>.offset(of: \fs_l7_exchange.role) == 112)
    #expect(MemoryLayout<fs_l7_exchange>.offset(of: \fs_l7_exchange.request_line) == 116)
    #expect(Int(FS_L7_REQUEST_LINE_LEN) == 128)
  }
}
