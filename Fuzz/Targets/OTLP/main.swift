import FlamespanOTLP
import FuzzSupport

/// The OTLP profiles reader: swift-protobuf's decoding, then every dictionary index resolved and checked.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  _ = try? OTLPProfileDecoder.decodeWithResource(fuzzBytes(data, size))
  return 0
}

runLibFuzzer { data, size in fuzz(data!, size) }
