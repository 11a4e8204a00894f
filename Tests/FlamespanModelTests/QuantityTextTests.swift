import FlamespanModel
import FlamespanTestSupport
import Testing

/// The duration, size and count parsers behind every option: whatever is typed, a value inside the
/// documented range or an error naming the option, never a trap.
@Suite struct QuantityTextTests {
  static let durationRange: ClosedRange<UInt64> = 1_000_000...(365 * 86_400_000_000_000)
  static let sizeRange: ClosedRange<UInt64> = (1 << 16)...(1 << 40)

  @Test func readsTheUnitsPeopleType() throws {
    let cases: [(String, UInt64)] = [
      ("8", 8_000_000_000), ("8s", 8_000_000_000), ("500ms", 500_000_000), ("2m", 120_000_000_000),
      ("1h", 3_600_000_000_000), ("1d", 86_400_000_000_000), ("1.5s", 1_500_000_000),
      ("250us", 250_000), ("1e3ms", 1_000_000_000), (" 10S ", 10_000_000_000),
      ("365d", 365 * 86_400_000_000_000), ("+2s", 2_000_000_000), ("7ns", 7),
    ]
    for (text, nanos) in cases {
      #expect(DurationText.nanoseconds(text) == nanos, "\(text)")
    }
    #expect(SizeText.bytes("64MiB") == 64 << 20)
    #expect(SizeText.bytes("1gib") == 1 << 30)
    #expect(SizeText.bytes("1048576") == 1 << 20)
    #expect(SizeText.bytes("2KB") == 2000)
    #expect(SizeText.bytes("1.5K") == 1536)
  }

  /// Each of these trapped in `UInt64(value * scale)` before, or was taken as a number by Double(_:).
  @Test func refusesWhatIsNotADurationOrDoesNotFit() {
    for text in [
      "1e300", "9999999h", "99999999999999999999", "-5s", "nan", "inf", "-inf", "0x10", "1_000",
      "", "s", "1e", "--5", "5ss", "1e309", "0", "0.0000000001ns", "١٢", "1.2.3",
    ] {
      #expect(throws: QuantityError.self, "\(text)") {
        try DurationText.nanoseconds(text, option: "--duration", in: Self.durationRange)
      }
    }
  }

  @Test func errorsNameTheOptionAndTheRange() {
    #expect {
      try DurationText.nanoseconds("1e300", option: "--duration", in: Self.durationRange)
    } throws: { error in
      (error as? QuantityError)?.message == "--duration must be between 1ms and 365d (got '1e300')"
    }
    #expect {
      try SizeText.bytes("2TiB", option: "--queue-bytes", in: Self.sizeRange)
    } throws: { error in
      (error as? QuantityError)?.message
        == "--queue-bytes must be between 64KiB and 1TiB (got '2TiB')"
    }
    #expect {
      try CountText.count("99999999999999999999", option: "max-spans", in: 0...10)
    } throws: { error in
      (error as? QuantityError)?.message
        == "max-spans must be between 0 and 10 (got '99999999999999999999')"
    }
  }

  /// 10,000 random strings built from digits, dots, exponents, signs, units, huge runs and junk. Each
  /// one parses to a value inside the range that prints and parses back to itself, or is refused with the
  /// option named: nothing traps.
  @Test func tenThousandRandomInputsNeverTrapAndRoundTrip() throws {
    var random = SplitMix(seed: 0x5eed_d0_7a71_0e)
    let pieces = [
      "0", "1", "5", "9", "42", "007", ".", ".5", "e", "E", "e3", "e-3", "e+300", "e309", "-", "+",
      "ns", "us", "µs", "ms", "s", "m", "h", "d", "min", "KiB", "MiB", "GiB", "TiB", "K", "kb",
      "GB",
      "b", " ", "\t", "nan", "inf", "0x", "ff", "_", "99999999999999999999", "18446744073709551615",
      "18446744073709551616", "1e300", "9999999", "%", "\u{0}", "\u{1b}[2J", "١", "💥",
    ]
    var accepted = (durations: 0, sizes: 0, counts: 0)
    var refused = 0
    for _ in 0..<10_000 {
      let text =
        random.next() % 2 == 0
        ? Self.numberLike(using: &random)
        : (0..<Int.random(in: 1...6, using: &random)).map { _ in
          pieces.randomElement(using: &random)!
        }.joined()

      do {
        let nanos = try DurationText.nanoseconds(
          text, option: "--duration", in: Self.durationRange)
        #expect(Self.durationRange.contains(nanos), "\(text) → \(nanos)")
        let printed = DurationText.text(nanoseconds: nanos)
        #expect(DurationText.nanoseconds(printed) == nanos, "\(text) → \(nanos) → \(printed)")
        accepted.durations += 1
      } catch {
        #expect(error.message.hasPrefix("--duration must be"), "\(text): \(error.message)")
        #expect(error.message.contains("between 1ms and 365d"))
        refused += 1
      }

      do {
        let bytes = try SizeText.bytes(text, option: "--queue-bytes", in: Self.sizeRange)
        #expect(Self.sizeRange.contains(bytes), "\(text) → \(bytes)")
        #expect(SizeText.bytes(SizeText.text(bytes: bytes)) == bytes, "\(text) → \(bytes)")
        accepted.sizes += 1
      } catch {
        #expect(error.message.hasPrefix("--queue-bytes must be"), "\(text): \(error.message)")
        refused += 1
      }

      do {
        let number = try CountText.count(text, option: "--queue-windows", in: 1...100_000)
        #expect((1...100_000).contains(number))
        #expect(try CountText.count(String(number), option: "", in: 1...100_000) == number)
        accepted.counts += 1
      } catch {
        #expect(error.message.hasPrefix("--queue-windows must be"), "\(text): \(error.message)")
        refused += 1
      }

      // The unranged forms answer nil or a number, whatever the input.
      _ = DurationText.nanoseconds(text)
      _ = SizeText.bytes(text)
    }
    print(
      "quantity property test: 10000 cases; accepted \(accepted.durations) durations, \(accepted.sizes) sizes, \(accepted.counts) counts; \(refused) refusals"
    )
    // The generator must reach both sides, or the test proves nothing.
    #expect(accepted.durations > 200 && accepted.sizes > 200 && accepted.counts > 50)
  }

  /// A number as people type it, right or nearly: a sign, 1 to 25 digits, a fraction, an exponent and a
  /// unit, each maybe, so that values land on both sides of every range.
  static func numberLike(using random: inout SplitMix) -> String {
    func digits(_ range: ClosedRange<Int>) -> String {
      String(
        (0..<Int.random(in: range, using: &random)).map { _ in
          "0123456789".randomElement(using: &random)!
        })
    }
    var text = ["", "", "", "-", "+", " "].randomElement(using: &random)!
    text += digits(1...25)
    if random.next() % 3 == 0 { text += "." + digits(0...6) }
    if random.next() % 4 == 0 {
      text += ["e", "E", "e-", "e+"].randomElement(using: &random)! + digits(1...4)
    }
    text += [
      "", "ns", "us", "ms", "s", "m", "h", "d", "KiB", "MiB", "GiB", "TiB", "K", "M", "G", "kb",
      "x", " s",
    ].randomElement(using: &random)!
    return text
  }

  /// Every value in range, printed, parses back to itself: the texts the errors and --print-config show.
  @Test func printedValuesParseBack() {
    var random = SplitMix(seed: 42)
    for _ in 0..<10_000 {
      let nanos = UInt64.random(in: Self.durationRange, using: &random)
      #expect(DurationText.nanoseconds(DurationText.text(nanoseconds: nanos)) == nanos)
      let bytes = UInt64.random(in: Self.sizeRange, using: &random)
      #expect(SizeText.bytes(SizeText.text(bytes: bytes)) == bytes)
    }
  }
}
