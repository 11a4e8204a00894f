import FlamespanExport
import FuzzSupport

/// The pprof reader `drill` and `spans` use on files from anywhere: gzip or raw protobuf, every length
/// and id reference checked.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  _ = try? PprofDecoder.decode(fuzzBytes(data, size))
  return 0
}

runLibFuzzer { data, size in fuzz(data!, size) }
