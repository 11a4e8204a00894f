import FlamespanModel

/// The CPU samples a profile holds for one span, as `flamespan spans` lists them.
public struct SpanSummary: Sendable, Equatable, Encodable {
  /// 32 lowercase hex characters.
  public var traceID: String
  /// 16 lowercase hex characters.
  public var spanID: String
  public var spanName: String?
  public var samples: Int64
  /// samples × the profile's period.
  public var cpuNanos: Int64
  /// The function that was running (innermost frame of the leaf) in most of this span's samples.
  public var topFunction: String?
  /// How many of `samples` had `topFunction` as their leaf.
  public var topFunctionSamples: Int64

  /// One entry per span, heaviest first; equal weights are ordered by trace id then span id so the
  /// listing is stable from run to run.
  public static func summarize(_ profile: Profile) -> [SpanSummary] {
    struct Key: Hashable {
      var traceID: [UInt8]
      var spanID: [UInt8]
    }
    struct Tally {
      var name: String?
      var samples: Int64 = 0
      var leaves: [String: Int64] = [:]
    }
    var tallies: [Key: Tally] = [:]
    for sample in profile.samples {
      guard let span = sample.span else { continue }
      let key = Key(traceID: span.traceID, spanID: span.spanID)
      var tally = tallies[key] ?? Tally()
      if tally.name == nil { tally.name = span.name }
      tally.samples += sample.count
      if let leaf = sample.stack.first {
        tally.leaves[leaf.frames.first?.function ?? leaf.safeDisplayName, default: 0] +=
          sample.count
      }
      tallies[key] = tally
    }
    let summaries = tallies.map { key, tally in
      // Ties between leaves go to the alphabetically first name, again for stable output.
      let top = tally.leaves.max { a, b in a.value != b.value ? a.value < b.value : a.key > b.key }
      return SpanSummary(
        traceID: HexCoding.encode(key.traceID), spanID: HexCoding.encode(key.spanID),
        spanName: tally.name, samples: tally.samples,
        cpuNanos: tally.samples &* profile.periodNanos, topFunction: top?.key,
        topFunctionSamples: top?.value ?? 0)
    }
    return summaries.sorted { a, b in
      if a.samples != b.samples { return a.samples > b.samples }
      if a.traceID != b.traceID { return a.traceID < b.traceID }
      return a.spanID < b.spanID
    }
  }

  /// Samples taken outside any span (idle threads, work between requests).
  public static func samplesOutsideSpans(_ profile: Profile) -> Int64 {
    profile.samples.reduce(0) { $0 + ($1.span == nil ? $1.count : 0) }
  }
}
