import FlamespanModel
import Foundation
import Testing

@Suite struct JSONTextTests {
  @Test func escapesWhatRFC8259RequiresAndAngleBrackets() throws {
    let value = "a\"b\\c\nd\re\tf\u{01}g<script>é"
    let quoted = JSONText.quote(value)
    #expect(quoted == "\"a\\\"b\\\\c\\nd\\re\\tf\\u0001g\\u003cscript>é\"")
    let decoded =
      try JSONSerialization.jsonObject(
        with: Data("[\(quoted)]".utf8)) as? [String]
    #expect(decoded == [value])
  }

  @Test func buildsDocumentsFromRawPartsAndStrings() throws {
    var json = JSONText()
    json.raw("{\"k\":")
    json.string("v\"")
    json.raw("}")
    let object = try JSONSerialization.jsonObject(with: Data(json.text.utf8)) as? [String: String]
    #expect(object == ["k": "v\""])
  }
}
