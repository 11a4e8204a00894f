import FlamespanModel
import FlamespanTestSupport
import Foundation
import Testing

@testable import FlamespanSymbolizer

@Suite struct AddressLineFormatTests {
  @Test("address lines: with or without 0x, spaces, blank, malformed")
  func parsing() {
    #expect(AddressLineFormat.parse("0x1a2B") == .address(0x1a2b))
    #expect(AddressLineFormat.parse("1a2b") == .address(0x1a2b))
    #expect(AddressLineFormat.parse("  0XFFFFFFFFFFFFFFFF \r") == .address(.max))
    #expect(AddressLineFormat.parse("") == .blank)
    #expect(AddressLineFormat.parse("   \t") == .blank)
    for bad in ["0x", "xyz", "0x12g4", "12 34", "0x1FFFFFFFFFFFFFFFF", "-1"] {
      guard case .malformed = AddressLineFormat.parse(bad) else {
        Issue.record("\(bad) should be malformed")
        continue
      }
    }
  }

  @Test(
    "every output line is one valid JSON object with the documented fields", .requires(.systemLibc))
  func json() throws {
    let binary = systemLibc
    let symbols = try functionSymbols(of: binary, dynamic: true)
    let addresses =
      randomAddresses(in: Array(symbols.prefix(200)), perSymbol: 2, seed: 3) + [0xffff_ffff_ffff]
    let locations = try Symbolizer().symbolize(binary: binary, virtualAddresses: addresses)
    for (address, location) in zip(addresses, locations) {
      let line = AddressLineFormat.json(for: location)
      #expect(!line.contains("\n"))
      let object = try #require(
        try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
      #expect(object["address"] as? String == "0x" + String(address, radix: 16))
      let frames = try #require(object["frames"] as? [[String: Any]])
      #expect(frames.count == location.frames.count)
      if frames.isEmpty { #expect(object["reason"] is String) }
      for (frame, expected) in zip(frames, location.frames) {
        #expect(frame["function"] as? String == expected.function)
        #expect(frame["line"] as? Int == expected.line)
        #expect(frame["column"] as? Int == expected.column)
        #expect((frame["file"] as? String) == expected.file)
      }
    }
  }

  @Test("strings with quotes, backslashes and control characters stay valid JSON")
  func escaping() throws {
    let tricky = "a\"b\\c\nd\te\u{1}f é 😀"
    let location = ResolvedLocation(
      address: 1, mapping: nil,
      frames: [SourceFrame(function: tricky, file: tricky, line: 1, column: 2)])
    let object = try #require(
      try JSONSerialization.jsonObject(with: Data(AddressLineFormat.json(for: location).utf8))
        as? [String: Any])
    let frame = try #require((object["frames"] as? [[String: Any]])?.first)
    #expect(frame["function"] as? String == tricky)
    let error = try #require(
      try JSONSerialization.jsonObject(
        with: Data(AddressLineFormat.errorJSON(input: tricky, message: "bad").utf8))
        as? [String: Any])
    #expect(error["input"] as? String == tricky)
    #expect(error["error"] as? String == "bad")
  }
}
