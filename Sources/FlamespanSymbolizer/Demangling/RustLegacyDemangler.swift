/// Rust's legacy mangling: an Itanium-style nested name `_ZN…E` whose last part is `17h` and a 16-digit hash.
/// The hash is dropped (it only disambiguates builds) and Rust's `$…$` escapes are decoded.
enum RustLegacyDemangler {
  static func demangle(_ name: String) -> String? {
    let bytes = Array(name.utf8)
    var index: Int
    if bytes.starts(with: Array("_ZN".utf8)) {
      index = 3
    } else if bytes.starts(with: Array("__ZN".utf8)) {
      index = 4
    } else {
      return nil
    }
    var components: [[UInt8]] = []
    while index < bytes.count, bytes[index] != UInt8(ascii: "E") {
      var length = 0
      let digitsStart = index
      while index < bytes.count, let digit = decimalValue(bytes[index]) {
        length = length * 10 + digit
        guard length < bytes.count else { return nil }
        index += 1
      }
      guard index > digitsStart, length > 0, index + length <= bytes.count else { return nil }
      components.append(Array(bytes[index..<(index + length)]))
      index += length
    }
    // Compilers may append a suffix such as `.llvm.1234` after the closing `E`.
    guard index < bytes.count, index == bytes.count - 1 || bytes[index + 1] == UInt8(ascii: "."),
      let hash = components.last, isHash(hash)
    else { return nil }
    components.removeLast()
    guard !components.isEmpty else { return nil }
    var parts: [String] = []
    for component in components {
      guard let decoded = unescape(component) else { return nil }
      parts.append(decoded)
    }
    return parts.joined(separator: "::")
  }

  private static func isHash(_ component: [UInt8]) -> Bool {
    component.count == 17 && component[0] == UInt8(ascii: "h")
      && component.dropFirst().allSatisfy { hexValue($0) != nil }
  }

  private static let escapes: [String: String] = [
    "SP": "@", "BP": "*", "RF": "&", "LT": "<", "GT": ">", "LP": "(", "RP": ")", "C": ",",
  ]

  private static func unescape(_ component: [UInt8]) -> String? {
    var rest = component[...]
    if rest.starts(with: Array("_$".utf8)) { rest = rest.dropFirst() }
    var output = ""
    while let byte = rest.first {
      if byte == UInt8(ascii: "$") {
        let body = rest.dropFirst()
        guard let end = body.firstIndex(of: UInt8(ascii: "$")) else { return nil }
        let code = String(decoding: body[..<end], as: UTF8.self)
        if let replacement = escapes[code] {
          output += replacement
        } else if code.hasPrefix("u"), let scalarValue = UInt32(code.dropFirst(), radix: 16),
          let scalar = Unicode.Scalar(scalarValue)
        {
          output.unicodeScalars.append(scalar)
        } else {
          return nil
        }
        rest = body[(end + 1)...]
      } else if byte == UInt8(ascii: "."), rest.dropFirst().first == UInt8(ascii: ".") {
        output += "::"
        rest = rest.dropFirst(2)
      } else {
        output.unicodeScalars.append(Unicode.Scalar(byte))
        rest = rest.dropFirst()
      }
    }
    return output
  }

  private static func decimalValue(_ byte: UInt8) -> Int? {
    byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") ? Int(byte - UInt8(ascii: "0")) : nil
  }

  private static func hexValue(_ byte: UInt8) -> Int? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(byte - UInt8(ascii: "0"))
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(byte - UInt8(ascii: "a")) + 10
    default: return nil
    }
  }
}
