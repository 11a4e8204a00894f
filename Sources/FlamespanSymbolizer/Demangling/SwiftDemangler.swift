#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

// The Swift runtime's own demangler; it is exported from libswiftCore but not declared in any module.
@_silgen_name("swift_demangle")
private func runtimeSwiftDemangle(
  _ mangledName: UnsafePointer<CChar>?, _ mangledNameLength: Int,
  _ outputBuffer: UnsafeMutablePointer<CChar>?,
  _ outputBufferSize: UnsafeMutablePointer<Int>?, _ flags: UInt32
) -> UnsafeMutablePointer<CChar>?

/// Swift names (`$s…`, `_$s…`, and the older `_T0…`, `$S…` forms).
enum SwiftDemangler {
  private static let prefixes = ["$s", "_$s", "$S", "_$S", "$e", "_$e", "_T0"]

  static func looksMangled(_ name: String) -> Bool {
    prefixes.contains { name.hasPrefix($0) }
  }

  static func demangle(_ name: String) -> String? {
    let result = name.withCString { text in
      runtimeSwiftDemangle(text, strlen(text), nil, nil, 0)
    }
    guard let result else { return nil }
    defer { free(result) }
    return String(cString: result)
  }
}
