import FlamespanRuntimes
import FuzzSupport

/// The Go function table reader on a `.gopclntab` section's bytes: the header, then for up to 32
/// functions (and at pcs spread over the text) the function record, its name, pcsp, file and line, and
/// inline expansion, with the input standing in for the `go:func.*` data its inline trees would lie in.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let bytes = fuzzBytes(data, size)
  guard let table = try? GoPCLNTable(bytes: bytes, textSectionAddress: 0x40_1000) else { return 0 }
  let funcData = GoFuncData(address: 0, bytes: bytes)
  let span = table.textRange.upperBound - table.textRange.lowerBound
  var pcs: [UInt64] = []
  for step in 0..<32 { pcs.append(table.textRange.lowerBound + span / 32 * UInt64(step)) }
  pcs.append(table.textRange.upperBound - 1)
  for pc in pcs {
    guard let function = try? table.function(at: pc) else { continue }
    _ = try? table.spDelta(of: function, at: pc)
    _ = try? table.frameAllocationPC(of: function)
    _ = try? table.sourcePosition(of: function, at: pc)
    _ = try? table.frames(of: function, at: pc, funcData: nil)
    _ = try? table.frames(of: function, at: pc, funcData: funcData)
  }
  return 0
}

runLibFuzzer { data, size in fuzz(data!, size) }
