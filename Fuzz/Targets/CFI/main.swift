import FlamespanUnwinder
import FuzzSupport

/// The CFI parser end to end: ELF sections, the `.eh_frame_hdr` search table or the FDE index, CIEs,
/// FDEs and the CFA machine, at the bounds of each indexed entry and at addresses taken from the input's
/// last bytes (so that the search table is probed where the input says, too).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  var addresses: [UInt64] = [0x40_0144, 0x40_0150, 0x40_1000]
  if size >= 16 {
    for start in [size - 16, size - 8] {
      var address: UInt64 = 0
      for index in 0..<8 { address |= UInt64(data[start + index]) << (8 * index) }
      addresses.append(address)
    }
  }
  withInputFile(data, size) { file in
    _ = CFIProbe.evaluate(read: file.read, addresses: addresses)
  }
  return 0
}

runLibFuzzer { data, size in fuzz(data!, size) }
