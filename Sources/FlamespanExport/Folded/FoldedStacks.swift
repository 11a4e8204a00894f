import FlamespanModel

/// Brendan Gregg's folded-stack text: one `root;child;leaf count` line per distinct stack, sorted, the
/// input of flamegraph.pl, speedscope, inferno and friends.
public enum FoldedStacks {
  public static func render(_ profile: Profile) -> String {
    var counts: [String: Int64] = [:]
    for sample in profile.samples where sample.count > 0 {
      let line = StackFrames.rootFirst(sample).map { sanitize($0.name) }.joined(separator: ";")
      counts[line, default: 0] += sample.count
    }
    var output = ""
    for (stack, count) in counts.sorted(by: { $0.key < $1.key }) {
      output += stack
      output += " \(count)\n"
    }
    return output
  }

  /// `;` separates frames and a newline ends the record, so neither may appear inside a name. An empty
  /// name would collapse two separators into one, so it gets a visible placeholder.
  static func sanitize(_ name: String) -> String {
    guard !name.isEmpty else { return "[empty]" }
    guard name.utf8.contains(where: { $0 == UInt8(ascii: ";") || $0 < 0x20 }) else { return name }
    var cleaned = ""
    cleaned.unicodeScalars.reserveCapacity(name.unicodeScalars.count)
    for scalar in name.unicodeScalars {
      switch scalar {
      case ";": cleaned.unicodeScalars.append(":")
      case _ where scalar.value < 0x20: cleaned.unicodeScalars.append(" ")
      default: cleaned.unicodeScalars.append(scalar)
      }
    }
    return cleaned
  }
}
