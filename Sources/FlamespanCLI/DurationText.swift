/// Parses durations as people type them: `8` and `8s` are seconds, plus `500ms`, `2m`, `1h`, `1.5s`.
enum DurationText {
  static func nanoseconds(_ text: String) -> UInt64? {
    let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
    let units: [(suffix: String, nanos: Double)] = [
      ("ms", 1e6), ("us", 1e3), ("ns", 1), ("s", 1e9), ("m", 60e9), ("h", 3600e9),
    ]
    var number = Substring(trimmed)
    var scale = 1e9
    for unit in units where trimmed.hasSuffix(unit.suffix) {
      number = trimmed.dropLast(unit.suffix.count)
      scale = unit.nanos
      break
    }
    guard let value = Double(number), value.isFinite, value > 0 else { return nil }
    return UInt64(value * scale)
  }
}

extension String {
  fileprivate func trimmingCharacters(in set: Set<Character>) -> String {
    String(drop(while: set.contains).reversed().drop(while: set.contains).reversed())
  }
}

extension Set where Element == Character {
  fileprivate static var whitespaces: Set<Character> { [" ", "\t"] }
}
