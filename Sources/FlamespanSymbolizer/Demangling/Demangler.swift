/// Turns a symbol's mangled name into the name a person reads, choosing the scheme from the name's prefix.
/// Returns nil when the name is not mangled or not valid in its scheme; callers then show it as it is.
enum Demangler {
  static func demangle(_ name: String) -> String? {
    if name.hasPrefix("_R") { return RustV0Demangler.demangle(name) }
    if name.hasPrefix("_ZN"), let rust = RustLegacyDemangler.demangle(name) { return rust }
    if name.hasPrefix("_Z") { return CxxDemangler.demangle(name) }
    if SwiftDemangler.looksMangled(name) { return SwiftDemangler.demangle(name) }
    return nil
  }
}
