import FlamespanRuntimes
import FuzzSupport

/// The perf map reader as a JIT's appends reach it: the input in pieces whose sizes come from its first
/// byte (so lines are split across reads at every offset), then lookups at the entries' bounds. Each line
/// is also parsed alone.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  guard size > 0 else { return 0 }
  let bytes = fuzzBytes(data, size)
  let chunk = Int(bytes[0]) + 1
  let text = bytes.dropFirst()
  let map = PerfMap(path: "/nonexistent/perf-fuzz.map", maxEntries: 64)
  var addresses: [UInt64] = []
  var start = text.startIndex
  while start < text.endIndex {
    let end = min(start + chunk, text.endIndex)
    map.consume(Array(text[start..<end]))
    start = end
  }
  map.finishPartialLine()
  for line in text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
    if case .entry(let entryStart, let entrySize, let name) = PerfMapLine.parse(Array(line)) {
      precondition(name.upperBound <= line.count && name.count <= PerfMapLine.maxNameLength)
      addresses += [entryStart, entryStart &+ entrySize &- 1, entryStart &+ entrySize]
    }
  }
  for address in addresses {
    _ = map.name(at: address)
    _ = map.range(at: address)
  }
  return 0
}

runLibFuzzer { data, size in fuzz(data!, size) }
