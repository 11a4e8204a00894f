/// Durations, sizes and counts as people type them on a command line or in a config file, always
/// checked against a range before they are used: a value that does not fit is an error that names the
/// option and the allowed range, never an overflow trap.
public struct QuantityError: Error, CustomStringConvertible, Sendable, Equatable {
  public var message: String
  public var description: String { message }
  public init(_ message: String) { self.message = message }
}

/// What a unit suffix multiplies, for durations (nanoseconds) and sizes (bytes).
struct QuantityUnits: Sendable {
  /// Suffixes, lowercase, with their scale; the plain number takes `plainScale`.
  var units: [(suffix: String, scale: UInt64)]
  var plainScale: UInt64

  /// Splits `text` into a number and a scale; nil when the suffix is unknown or the number is empty.
  func split(_ text: String) -> (number: Substring, scale: UInt64)? {
    let lowered = text.lowercased()
    // The longest suffix first, so that "ms" is not read as "m" after a number "…m".
    let numberEnd =
      lowered.lastIndex { $0.isASCII && ($0.isNumber || $0 == ".") }.map {
        lowered.index(after: $0)
      } ?? lowered.startIndex
    let suffix = String(lowered[numberEnd...]).trimmingSpaces()
    let number = Substring(lowered[..<numberEnd]).trimmingSpaces()
    guard !number.isEmpty else { return nil }
    if suffix.isEmpty { return (number, plainScale) }
    guard let unit = units.first(where: { $0.suffix == suffix }) else { return nil }
    return (number, unit.scale)
  }

  /// The exact value of `number × scale`, with a sign: nil for junk (NaN, inf, hex, stray characters),
  /// ±infinity for a number too large for any range, so that it reports as out of range.
  func value(_ text: String) -> QuantityValue? {
    var trimmed = Substring(text).trimmingSpaces()
    var negative = false
    if let sign = trimmed.first, sign == "-" || sign == "+" {
      negative = sign == "-"
      trimmed = trimmed.dropFirst()
    }
    guard let (number, scale) = split(String(trimmed)) else { return nil }
    // Digits, one optional fraction and an optional decimal exponent: no "inf", "nan", hex floats or
    // underscores, all of which Double(_:) would otherwise take.
    guard Self.isDecimal(number) else { return nil }
    if number.allSatisfy(\.isASCIINumber) {
      // Integers stay exact: 365d in nanoseconds is past the 2^53 a Double holds exactly.
      let digits = number.drop { $0 == "0" }
      guard digits.count <= 20, let integer = UInt64(digits.isEmpty ? "0" : digits) else {
        return .huge(negative: negative)
      }
      let (product, overflow) = integer.multipliedReportingOverflow(by: scale)
      if overflow { return .huge(negative: negative) }
      return product == 0 ? .exact(0) : negative ? .negative : .exact(product)
    }
    guard let double = Double(number), !double.isNaN else { return nil }
    let scaled = double * Double(scale)
    if scaled.isInfinite || scaled >= 18_446_744_073_709_551_616.0 {
      return .huge(negative: negative)
    }
    let rounded = scaled.rounded()
    if rounded == 0 { return scaled == 0 ? .exact(0) : .fraction }
    return negative ? .negative : .exact(UInt64(rounded))
  }

  static func isDecimal(_ number: Substring) -> Bool {
    var sawDigit = false
    var sawDot = false
    var index = number.startIndex
    while index < number.endIndex {
      let character = number[index]
      if character.isASCIINumber {
        sawDigit = true
      } else if character == "." && !sawDot {
        sawDot = true
      } else if character == "e" && sawDigit {
        var exponent = number[number.index(after: index)...]
        if exponent.first == "-" || exponent.first == "+" { exponent = exponent.dropFirst() }
        return !exponent.isEmpty && exponent.allSatisfy(\.isASCIINumber)
      } else {
        return false
      }
      index = number.index(after: index)
    }
    return sawDigit
  }
}

enum QuantityValue: Equatable {
  case exact(UInt64)
  /// Below zero (reported as out of range, not as junk).
  case negative
  /// Above zero but below one unit of the smallest scale (0.1ns).
  case fraction
  /// Past UInt64.
  case huge(negative: Bool)
}

extension QuantityUnits {
  /// Checks `text` against `range`, naming `option` in the error.
  func parse(
    _ text: String, option: String, in range: ClosedRange<UInt64>, what: String, example: String,
    format: (UInt64) -> String
  ) throws(QuantityError) -> UInt64 {
    let shown = text.count > 40 ? String(text.prefix(40)) + "…" : text
    let rangeText = "between \(format(range.lowerBound)) and \(format(range.upperBound))"
    guard let value = value(text) else {
      throw QuantityError(
        "\(option) must be \(what) \(rangeText), such as \(example) (got '\(shown)')")
    }
    guard case .exact(let number) = value, range.contains(number) else {
      throw QuantityError("\(option) must be \(rangeText) (got '\(shown)')")
    }
    return number
  }
}

/// Durations: `8` and `8s` are seconds, plus `ns`, `us`, `ms`, `m`, `h` and `d`; fractions (`1.5s`) and
/// exponents (`1e3ms`) are taken.
public enum DurationText {
  static let units = QuantityUnits(
    units: [
      ("ns", 1), ("us", 1_000), ("µs", 1_000), ("ms", 1_000_000), ("s", 1_000_000_000),
      ("sec", 1_000_000_000), ("m", 60_000_000_000), ("min", 60_000_000_000),
      ("h", 3_600_000_000_000), ("d", 86_400_000_000_000),
    ], plainScale: 1_000_000_000)

  /// Nanoseconds from `text`, checked against `range`; the error names `option` and the range.
  public static func nanoseconds(
    _ text: String, option: String, in range: ClosedRange<UInt64>
  ) throws(QuantityError) -> UInt64 {
    try units.parse(
      text, option: option, in: range, what: "a duration", example: "8, 8s, 500ms, 2m or 1h",
      format: self.text(nanoseconds:))
  }

  /// Nanoseconds from `text`, or nil if it is not a positive duration that fits in 64 bits.
  public static func nanoseconds(_ text: String) -> UInt64? {
    guard case .exact(let value) = units.value(text), value > 0 else { return nil }
    return value
  }

  /// The shortest exact text for `nanoseconds` in the largest unit that divides it: `1ms`, `365d`,
  /// `1500ms`. It parses back to the same number.
  public static func text(nanoseconds: UInt64) -> String {
    let units: [(String, UInt64)] = [
      ("d", 86_400_000_000_000), ("h", 3_600_000_000_000), ("m", 60_000_000_000),
      ("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000),
    ]
    guard nanoseconds > 0 else { return "0s" }
    for (suffix, scale) in units where nanoseconds % scale == 0 {
      return "\(nanoseconds / scale)\(suffix)"
    }
    return "\(nanoseconds)ns"
  }
}

/// Sizes in bytes: a plain number, or with a unit: `KiB`, `MiB`, `GiB`, `TiB` (also `K`, `M`, `G`, `T`),
/// or the decimal `KB`, `MB`, `GB`, `TB`.
public enum SizeText {
  static let units = QuantityUnits(
    units: [
      ("b", 1), ("k", 1 << 10), ("kib", 1 << 10), ("m", 1 << 20), ("mib", 1 << 20),
      ("g", 1 << 30), ("gib", 1 << 30), ("t", 1 << 40), ("tib", 1 << 40),
      ("kb", 1_000), ("mb", 1_000_000), ("gb", 1_000_000_000), ("tb", 1_000_000_000_000),
    ], plainScale: 1)

  /// Bytes from `text`, checked against `range`; the error names `option` and the range.
  public static func bytes(_ text: String, option: String, in range: ClosedRange<UInt64>)
    throws(QuantityError) -> UInt64
  {
    try units.parse(
      text, option: option, in: range, what: "a size", example: "1048576, 64MiB or 1GiB",
      format: self.text(bytes:))
  }

  /// Bytes from `text`, or nil if it is not a size that fits in 64 bits.
  public static func bytes(_ text: String) -> UInt64? {
    guard case .exact(let value) = units.value(text) else { return nil }
    return value
  }

  /// The exact text for `bytes` in the largest binary unit that divides it: `64MiB`, `1GiB`, `1000`.
  public static func text(bytes: UInt64) -> String {
    for (suffix, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)]
    where bytes != 0 && bytes % (1 << UInt64(shift)) == 0 {
      return "\(bytes >> UInt64(shift))\(suffix)"
    }
    return String(bytes)
  }
}

/// Counts: a plain decimal integer.
public enum CountText {
  /// The count in `text`, checked against `range`; the error names `option` and the range.
  public static func count(_ text: String, option: String, in range: ClosedRange<Int>)
    throws(QuantityError) -> Int
  {
    let trimmed = Substring(text).trimmingSpaces()
    let shown = text.count > 40 ? String(text.prefix(40)) + "…" : text
    let rangeText = "between \(range.lowerBound) and \(range.upperBound)"
    let digits = trimmed.first == "-" || trimmed.first == "+" ? trimmed.dropFirst() : trimmed
    guard !digits.isEmpty, digits.allSatisfy(\.isASCIINumber) else {
      throw QuantityError("\(option) must be a whole number \(rangeText) (got '\(shown)')")
    }
    guard let number = Int(trimmed), range.contains(number) else {
      throw QuantityError("\(option) must be \(rangeText) (got '\(shown)')")
    }
    return number
  }
}

extension Character {
  fileprivate var isASCIINumber: Bool { isASCII && isNumber }
}

extension Substring {
  fileprivate func trimmingSpaces() -> Substring {
    var text = self
    while let first = text.first, first == " " || first == "\t" { text = text.dropFirst() }
    while let last = text.last, last == " " || last == "\t" { text = text.dropLast() }
    return text
  }
}

extension String {
  fileprivate func trimmingSpaces() -> Substring { Substring(self).trimmingSpaces() }
}
