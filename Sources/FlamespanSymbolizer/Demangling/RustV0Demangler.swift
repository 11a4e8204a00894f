/// Rust's v0 mangling (`_R…`, RFC 2603): paths, generic arguments, impl paths, closures and shims, types
/// (basic, references, pointers, arrays, slices, tuples, fn pointers, `dyn`), lifetimes, integer/bool/char
/// constants and back-references. Output follows rustc-demangle's short form: crate disambiguators and the
/// instantiating crate are left out.
enum RustV0Demangler {
  static func demangle(_ name: String) -> String? {
    var bytes = Array(name.utf8)
    guard bytes.count > 2, bytes[0] == UInt8(ascii: "_"), bytes[1] == UInt8(ascii: "R") else {
      return nil
    }
    bytes.removeFirst(2)
    var parser = Parser(bytes: bytes)
    return try? parser.symbol()
  }

  private struct Invalid: Error {}

  private struct Parser {
    let bytes: [UInt8]
    var position = 0
    var output = ""
    /// Number of lifetimes bound by enclosing `for<…>` binders, for naming `'a`, `'b`, ….
    var boundLifetimes = 0
    var depth = 0
    var printing = true

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func symbol() throws(Invalid) -> String {
      // Optional encoding version, a decimal number; only version 0 (absent) exists.
      if let first = peek(), isDigit(first) { throw Invalid() }
      try path(inValue: true)
      // The instantiating crate is another path; parse it to validate, print nothing.
      if let next = peek(), isUpper(next) {
        let saved = printing
        printing = false
        try path(inValue: false)
        printing = saved
      }
      // Anything after `.` or `$` is a vendor suffix (such as `.llvm.123`).
      if let next = peek(), next != UInt8(ascii: "."), next != UInt8(ascii: "$") { throw Invalid() }
      return output
    }

    // MARK: Reading

    func peek() -> UInt8? { position < bytes.count ? bytes[position] : nil }

    mutating func next() throws(Invalid) -> UInt8 {
      guard position < bytes.count else { throw Invalid() }
      defer { position += 1 }
      return bytes[position]
    }

    mutating func eat(_ character: Character) -> Bool {
      guard let byte = peek(), byte == character.asciiValue! else { return false }
      position += 1
      return true
    }

    /// `_` is 0; otherwise base-62 digits then `_`, value + 1.
    mutating func base62() throws(Invalid) -> UInt64 {
      if eat("_") { return 0 }
      var value: UInt64 = 0
      while true {
        let byte = try next()
        if byte == UInt8(ascii: "_") { break }
        let digit: UInt64
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt64(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "z"): digit = UInt64(byte - UInt8(ascii: "a")) + 10
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): digit = UInt64(byte - UInt8(ascii: "A")) + 36
        default: throw Invalid()
        }
        let (scaled, overflow1) = value.multipliedReportingOverflow(by: 62)
        let (sum, overflow2) = scaled.addingReportingOverflow(digit)
        guard !overflow1, !overflow2 else { throw Invalid() }
        value = sum
      }
      let (result, overflow) = value.addingReportingOverflow(1)
      guard !overflow else { throw Invalid() }
      return result
    }

    mutating func optionalBase62(after tag: Character) throws(Invalid) -> UInt64 {
      eat(tag) ? try base62() + 1 : 0
    }

    mutating func decimal() throws(Invalid) -> Int {
      let first = try next()
      guard isDigit(first) else { throw Invalid() }
      if first == UInt8(ascii: "0") { return 0 }
      var value = Int(first - UInt8(ascii: "0"))
      while let byte = peek(), isDigit(byte) {
        value = value * 10 + Int(byte - UInt8(ascii: "0"))
        guard value <= bytes.count else { throw Invalid() }
        position += 1
      }
      return value
    }

    mutating func identifier() throws(Invalid) -> String {
      let isPunycode = eat("u")
      let length = try decimal()
      _ = eat("_")
      guard position + length <= bytes.count else { throw Invalid() }
      let raw = Array(bytes[position..<(position + length)])
      position += length
      if isPunycode {
        return Punycode.decode(raw) ?? "punycode{\(String(decoding: raw, as: UTF8.self))}"
      }
      return String(decoding: raw, as: UTF8.self)
    }

    mutating func print(_ text: String) {
      if printing { output += text }
    }

    /// Runs `body` at the position a back-reference points to, then returns here.
    mutating func followBackReference(_ body: (inout Parser) throws(Invalid) -> Void)
      throws(Invalid)
    {
      let start = position - 1
      let target = try base62()
      guard target < UInt64(start) else { throw Invalid() }
      let saved = position
      position = Int(target)
      try nested(body)
      position = saved
    }

    mutating func nested(_ body: (inout Parser) throws(Invalid) -> Void) throws(Invalid) {
      depth += 1
      guard depth < 300 else { throw Invalid() }
      try body(&self)
      depth -= 1
    }

    // MARK: Paths

    mutating func path(inValue: Bool) throws(Invalid) {
      try nested { parser throws(Invalid) in try parser.pathBody(inValue: inValue) }
    }

    private mutating func pathBody(inValue: Bool) throws(Invalid) {
      let tag = try next()
      switch tag {
      case UInt8(ascii: "C"):
        _ = try optionalBase62(after: "s")
        print(try identifier())
      case UInt8(ascii: "N"):
        let namespace = try next()
        guard isAlpha(namespace) else { throw Invalid() }
        try path(inValue: inValue)
        let disambiguator = try optionalBase62(after: "s")
        let name = try identifier()
        if isUpper(namespace) {
          let kind: String
          switch namespace {
          case UInt8(ascii: "C"): kind = "closure"
          case UInt8(ascii: "S"): kind = "shim"
          default: kind = String(UnicodeScalar(namespace))
          }
          print("::{\(kind)\(name.isEmpty ? "" : ":" + name)#\(disambiguator)}")
        } else if !name.isEmpty {
          print("::" + name)
        }
      case UInt8(ascii: "M"), UInt8(ascii: "X"), UInt8(ascii: "Y"):
        if tag != UInt8(ascii: "Y") {
          // The impl's own path says where the impl block is; rustc-demangle leaves it out too.
          _ = try optionalBase62(after: "s")
          let saved = printing
          printing = false
          try path(inValue: false)
          printing = saved
        }
        print("<")
        try type()
        if tag != UInt8(ascii: "M") {
          print(" as ")
          try path(inValue: false)
        }
        print(">")
      case UInt8(ascii: "I"):
        try path(inValue: inValue)
        if inValue { print("::") }
        print("<")
        try genericArguments()
        print(">")
      case UInt8(ascii: "B"):
        try followBackReference { parser throws(Invalid) in try parser.pathBody(inValue: inValue) }
      default:
        throw Invalid()
      }
    }

    mutating func genericArguments() throws(Invalid) {
      var first = true
      while !eat("E") {
        if !first { print(", ") }
        first = false
        if eat("L") {
          printLifetime(try base62())
        } else if eat("K") {
          try constant()
        } else {
          try type()
        }
      }
    }

    mutating func printLifetime(_ index: UInt64) {
      guard index != 0 else {
        print("'_")
        return
      }
      let depthIndex = Int64(boundLifetimes) - Int64(index)
      if depthIndex >= 0 && depthIndex < 26 {
        print("'" + String(UnicodeScalar(UInt8(ascii: "a") + UInt8(depthIndex))))
      } else if depthIndex >= 0 {
        print("'_\(depthIndex)")
      } else {
        print("'?")
      }
    }

    // MARK: Types

    private static let basicTypes: [UInt8: String] = [
      UInt8(ascii: "a"): "i8", UInt8(ascii: "b"): "bool", UInt8(ascii: "c"): "char",
      UInt8(ascii: "d"): "f64",
      UInt8(ascii: "e"): "str", UInt8(ascii: "f"): "f32", UInt8(ascii: "h"): "u8",
      UInt8(ascii: "i"): "isize",
      UInt8(ascii: "j"): "usize", UInt8(ascii: "l"): "i32", UInt8(ascii: "m"): "u32",
      UInt8(ascii: "n"): "i128",
      UInt8(ascii: "o"): "u128", UInt8(ascii: "s"): "i16", UInt8(ascii: "t"): "u16",
      UInt8(ascii: "u"): "()",
      UInt8(ascii: "v"): "...", UInt8(ascii: "x"): "i64", UInt8(ascii: "y"): "u64",
      UInt8(ascii: "z"): "!",
      UInt8(ascii: "p"): "_",
    ]

    mutating func type() throws(Invalid) {
      try nested { parser throws(Invalid) in try parser.typeBody() }
    }

    private mutating func typeBody() throws(Invalid) {
      let tag = try next()
      if let basic = Self.basicTypes[tag] {
        print(basic)
        return
      }
      switch tag {
      case UInt8(ascii: "R"), UInt8(ascii: "Q"):
        print("&")
        if eat("L") {
          let lifetime = try base62()
          if lifetime != 0 {
            printLifetime(lifetime)
            print(" ")
          }
        }
        if tag == UInt8(ascii: "Q") { print("mut ") }
        try type()
      case UInt8(ascii: "P"):
        print("*const ")
        try type()
      case UInt8(ascii: "O"):
        print("*mut ")
        try type()
      case UInt8(ascii: "A"):
        print("[")
        try type()
        print("; ")
        try constant()
        print("]")
      case UInt8(ascii: "S"):
        print("[")
        try type()
        print("]")
      case UInt8(ascii: "T"):
        print("(")
        var count = 0
        while !eat("E") {
          if count > 0 { print(", ") }
          try type()
          count += 1
        }
        if count == 1 { print(",") }
        print(")")
      case UInt8(ascii: "F"):
        try binder { parser throws(Invalid) in try parser.functionSignature() }
      case UInt8(ascii: "D"):
        print("dyn ")
        try binder { parser throws(Invalid) in try parser.dynBounds() }
        if eat("L") {
          let lifetime = try base62()
          if lifetime != 0 {
            print(" + ")
            printLifetime(lifetime)
          }
        } else {
          throw Invalid()
        }
      case UInt8(ascii: "B"):
        try followBackReference { parser throws(Invalid) in try parser.typeBody() }
      default:
        // A named type is a path.
        position -= 1
        try path(inValue: false)
      }
    }

    /// `G<count>` binds lifetimes for the body; printed as `for<'a, …> `.
    mutating func binder(_ body: (inout Parser) throws(Invalid) -> Void) throws(Invalid) {
      let count = eat("G") ? try base62() + 1 : 0
      guard count < 1000 else { throw Invalid() }
      if count > 0 {
        print("for<")
        for index in 0..<Int(count) {
          if index > 0 { print(", ") }
          boundLifetimes += 1
          printLifetime(1)
        }
        print("> ")
      }
      try body(&self)
      boundLifetimes -= Int(count)
    }

    mutating func functionSignature() throws(Invalid) {
      if eat("U") { print("unsafe ") }
      if eat("K") {
        if eat("C") {
          print("extern \"C\" ")
        } else {
          let abi = String(try identifier().map { $0 == "_" ? "-" : $0 })
          print("extern \"\(abi)\" ")
        }
      }
      print("fn(")
      var first = true
      while !eat("E") {
        if !first { print(", ") }
        first = false
        try type()
      }
      print(")")
      if eat("u") { return }
      print(" -> ")
      try type()
    }

    mutating func dynBounds() throws(Invalid) {
      var first = true
      while !eat("E") {
        if !first { print(" + ") }
        first = false
        try dynTrait()
      }
    }

    mutating func dynTrait() throws(Invalid) {
      var open = try pathMaybeOpenGenerics()
      while eat("p") {
        print(open ? ", " : "<")
        open = true
        print(try identifier())
        print(" = ")
        try type()
      }
      if open { print(">") }
    }

    /// A trait path whose generic list may still receive associated-type bindings: returns true when it
    /// printed `<…` without closing it.
    mutating func pathMaybeOpenGenerics() throws(Invalid) -> Bool {
      if eat("B") {
        var open = false
        try followBackReference { parser throws(Invalid) in
          open = try parser.pathMaybeOpenGenerics()
        }
        return open
      }
      if eat("I") {
        try path(inValue: false)
        print("<")
        // Left open: the caller adds more arguments (a trait's associated types) before the ">".
        try genericArguments()
        return true
      }
      try path(inValue: false)
      return false
    }

    // MARK: Constants

    mutating func constant() throws(Invalid) {
      if eat("B") {
        try followBackReference { parser throws(Invalid) in try parser.constant() }
        return
      }
      let tag = try next()
      switch tag {
      case UInt8(ascii: "p"):
        print("_")
      case UInt8(ascii: "h"), UInt8(ascii: "t"), UInt8(ascii: "m"), UInt8(ascii: "y"),
        UInt8(ascii: "o"),
        UInt8(ascii: "j"), UInt8(ascii: "a"), UInt8(ascii: "s"), UInt8(ascii: "l"),
        UInt8(ascii: "x"),
        UInt8(ascii: "n"), UInt8(ascii: "i"):
        let negative = eat("n")
        let digits = try hexDigits()
        if negative { print("-") }
        print(digits.count <= 16 ? String(UInt64(digits, radix: 16) ?? 0) : "0x" + digits)
        // Like c++filt, name the integer type: `::<10: usize>`.
        print(": " + Self.basicTypes[tag]!)
      case UInt8(ascii: "b"):
        let digits = try hexDigits()
        switch digits {
        case "0": print("false")
        case "1": print("true")
        default: throw Invalid()
        }
      case UInt8(ascii: "c"):
        let digits = try hexDigits()
        guard let value = UInt32(digits, radix: 16), let scalar = Unicode.Scalar(value) else {
          throw Invalid()
        }
        print(
          "'" + String(Character(scalar)).unicodeScalars.map { $0.escaped(asASCII: false) }.joined()
            + "'")
      default:
        throw Invalid()
      }
    }

    mutating func hexDigits() throws(Invalid) -> String {
      let start = position
      while let byte = peek(), byte != UInt8(ascii: "_") {
        guard isHex(byte) else { throw Invalid() }
        position += 1
      }
      let digits = String(decoding: bytes[start..<position], as: UTF8.self)
      _ = try next()
      let trimmed = digits.drop { $0 == "0" }
      return trimmed.isEmpty ? "0" : String(trimmed)
    }
  }
}

private func isDigit(_ byte: UInt8) -> Bool {
  byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
}
private func isUpper(_ byte: UInt8) -> Bool {
  byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")
}
private func isAlpha(_ byte: UInt8) -> Bool {
  isUpper(byte) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
}
private func isHex(_ byte: UInt8) -> Bool {
  isDigit(byte) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"))
}

/// RFC 3492 decoding as v0 uses it: the basic characters, `_` as the delimiter in place of `-`.
enum Punycode {
  static func decode(_ input: [UInt8]) -> String? {
    var basic: [Unicode.Scalar] = []
    var encoded = input[...]
    if let delimiter = input.lastIndex(of: UInt8(ascii: "_")) {
      basic = input[..<delimiter].map { Unicode.Scalar($0) }
      encoded = input[(delimiter + 1)...]
    }
    var output = basic
    var n = 128
    var i = 0
    var bias = 72
    var iterator = encoded.makeIterator()
    var pending = iterator.next()
    while pending != nil {
      let oldI = i
      var weight = 1
      var k = 36
      while true {
        guard let byte = pending else { return nil }
        pending = iterator.next()
        let digit: Int
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"): digit = Int(byte - UInt8(ascii: "a"))
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = Int(byte - UInt8(ascii: "0")) + 26
        default: return nil
        }
        i += digit * weight
        let threshold = k <= bias ? 1 : (k >= bias + 26 ? 26 : k - bias)
        if digit < threshold { break }
        weight *= 36 - threshold
        k += 36
        guard i < 1 << 30, weight < 1 << 30 else { return nil }
      }
      let count = output.count + 1
      var delta = oldI == 0 ? (i - oldI) / 700 : (i - oldI) / 2
      delta += delta / count
      var shift = 0
      while delta > 455 {
        delta /= 35
        shift += 36
      }
      bias = shift + (36 * delta) / (delta + 38)
      n += i / count
      i %= count
      guard let scalar = Unicode.Scalar(UInt32(n)) else { return nil }
      output.insert(scalar, at: i)
      i += 1
    }
    var text = ""
    text.unicodeScalars.append(contentsOf: output)
    return text
  }
}
