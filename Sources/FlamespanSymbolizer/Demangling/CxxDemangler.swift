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
    return status == 0 ? String(cString: result) : nil
  }
}
