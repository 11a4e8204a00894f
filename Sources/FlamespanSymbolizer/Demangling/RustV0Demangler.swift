enum RustV0Demangler {
  static func demangle(_ name: String) -> String? { nil }
}
