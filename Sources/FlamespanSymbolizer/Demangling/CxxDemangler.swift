import CLibDW

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// Itanium C++ names (`_Z…`) through libstdc++'s `__cxa_demangle`.
enum CxxDemangler {
  static func demangle(_ name: String) -> String? {
    var status: Int32 = 0
    guard let result = name.withCString({ __cxa_demangle($0, nil, nil, &status) }) else {
      return nil
    }
    defer { free(result) }
    guard status == 0 else { return nil }
    return llvmStyle(String(cString: result))
  }

  /// libstdc++ writes `vector<basic_string<char> >` and `f() [clone .cold]`; llvm-symbolizer writes
  /// `vector<basic_string<char>>` and `f() (.cold)`. Profiles get compared with llvm-symbolizer's output, so
  /// follow its spelling.
  static func llvmStyle(_ name: String) -> String {
    var result = name
    while result.contains("> >") {
      result = result.replacing("> >", with: ">>")
    }
    while let open = result.firstRange(of: " [clone ."),
      let close = result[open.upperBound...].firstIndex(of: "]")
    {
      let suffix = result[result.index(before: open.upperBound)..<close]
      result.replaceSubrange(open.lowerBound...close, with: " (" + suffix + ")")
    }
    return result
  }
}
