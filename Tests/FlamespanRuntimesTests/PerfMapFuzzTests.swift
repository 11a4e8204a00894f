import FlamespanRuntimes
import Testing

/// Mutated lines must be parsed or counted as bad, never crash, and never put a range in the index
/// that a well-formed line could not.
@Suite struct PerfMapFuzzTests {
  static let seeds = [
    "7fbd4e7c5b80 388 JS:*burnSlow /tmp/app.js:1:18",
    "0x00007f2d1d4a3a00 0x0000000000000140 Interpreter",
    "ffffffffffffffef 10 top",
    "1000 1 x",
    "py::burn:/tmp/x.py",
    "18c4680 aa0 Builtin:RecordWriteSaveFP",
  ]

  @Test func mutatedLinesNeverCrashTheReader() {
    var generator = SplitMix(seed: 42)
    let alphabet = Array("0123456789abcdefABCDEFxX \t\r:;*~^-/g\u{0}\u{ff}".utf8)
    let map = PerfMap(path: "/nonexistent", maxEntries: 1000)
    var good = 0
    var bad = 0
    for _ in 0..<5000 {
      var bytes = Array(Self.seeds[Int(generator.next() % UInt64(Self.seeds.count))].utf8)
      for _ in 0..<(1 + Int(generator.next() % 6)) {
        let position = bytes.isEmpty ? 0 : Int(generator.next() % UInt64(bytes.count + 1))
        switch generator.next() % 5 {
        case 0 where position < bytes.count: bytes.remove(at: position)
        case 1: bytes.insert(alphabet[Int(generator.next() % UInt64(alphabet.count))], at: position)
        case 2 where position < bytes.count:
          bytes[position] = UInt8(truncatingIfNeeded: generator.next())
        case 3:
          bytes.insert(contentsOf: Array(repeating: UInt8(ascii: "f"), count: 12), at: position)
        default: bytes = Array(bytes.prefix(position))
        }
      }
      bytes.removeAll { $0 == 0x0A }
      switch PerfMapLine.parse(bytes) {
      case .entry(let start, let size, let name):
        good += 1
        #expect(size > 0 && size <= PerfMapLine.maxCodeSize)
        #expect(start <= UInt64.max - size)
        #expect(!name.isEmpty && name.upperBound <= bytes.count)
      case .bad: bad += 1
      case .blank: break
      }
      // Fed in two pieces, as a writer's flushes might cut it.
      let cut = bytes.isEmpty ? 0 : Int(generator.next() % UInt64(bytes.count))
      map.consume(Array(bytes[..<cut]))
      map.consume(Array(bytes[cut...]) + [0x0A])
      _ = map.name(at: generator.next())
      _ = map.name(at: 0x7fbd_4e7c_5b80 + generator.next() % 0x1000)
    }
    #expect(good > 500)
    #expect(bad > 500)
    #expect(map.badLines == bad)
    #expect(map.entryCount + map.droppedEntries == good)
  }
}
