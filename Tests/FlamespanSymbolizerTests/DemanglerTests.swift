import FlamespanTestSupport
import Foundation
import Testing

@testable import FlamespanSymbolizer

/// Each scheme is checked against an independent demangler on names produced by a real compiler.
@Suite struct DemanglerTests {
  /// Mangled names from `nm` of `binary`, filtered by prefix, at most `limit`.
  static func mangledNames(
    in binary: String, prefix: String, dynamic: Bool = false, limit: Int = 2000
  ) throws
    -> [String]
  {
    let text = try Run.checked(["nm"] + (dynamic ? ["-D"] : []) + ["--defined-only", binary])
    let names = text.split(separator: "\n").compactMap { line -> String? in
      guard let name = line.split(separator: " ").last, name.hasPrefix(prefix) else { return nil }
      return String(name)
    }
    return Array(Set(names).sorted().prefix(limit))
  }

  /// Runs a filter tool that reads names on stdin and prints one demangled name per line.
  static func reference(_ tool: String, _ arguments: [String], names: [String]) throws -> [String] {
    let output = try Run.checked([tool] + arguments, input: names.joined(separator: "\n") + "\n")
    return output.split(separator: "\n", omittingEmptySubsequences: false).prefix(names.count).map(
      String.init)
  }

  static let rustc = TestEnvironment.which("rustc", preferring: [NSHomeDirectory() + "/.cargo/bin"])
  static let rustcNeed = Need.check {
    rustc == nil
      ? "rustc is neither on PATH nor in ~/.cargo/bin (scripts/setup.sh installs it)" : nil
  }

  static func compileRust(_ mangling: String, into directory: URL) throws -> String {
    let rustc = try #require(Self.rustc)
    let output = directory.appendingPathComponent("rust-\(mangling)").path
    let source = fixturesDirectory.appendingPathComponent("shapes.rs").path
    // Legacy is stable rustc's default; asking for it by name needs -Z unstable-options.
    let mangling = mangling == "legacy" ? [] : ["-C", "symbol-mangling-version=\(mangling)"]
    _ = try Run.checked([rustc] + ["-C", "debuginfo=2", "-O"] + mangling + [source, "-o", output])
    return output
  }

  @Test(
    "Rust v0 names from rustc agree with c++filt (crate hashes aside)",
    .requires(.tool("c++filt"), rustcNeed))
  func rustV0() throws {
    let cxxfilt = "c++filt"
    let directory = try TestEnvironment.temporaryDirectory("sym")
    defer { try? FileManager.default.removeItem(at: directory) }
    let binary = try Self.compileRust("v0", into: directory)
    let names = try Self.mangledNames(in: binary, prefix: "_R")
    #expect(names.count > 100)
    let expected = try Self.reference(cxxfilt, [], names: names).map { removeCrateHashes($0) }
    var mismatches: [String] = []
    for (name, want) in zip(names, expected) {
      let ours = Demangler.demangle(name)
      if ours != stripVendorSuffix(want) {
        mismatches.append("\(name)\n  ours: \(ours ?? "nil")\n  want: \(want)")
      }
    }
    #expect(
      mismatches.isEmpty,
      "\(mismatches.count)/\(names.count):\n\(mismatches.prefix(5).joined(separator: "\n"))")
    #expect(names.contains { Demangler.demangle($0) == "<shapes::Square as shapes::Shape>::area" })
  }

  @Test(
    "Rust legacy names drop the hash and agree with c++filt otherwise",
    .requires(.tool("c++filt"), rustcNeed))
  func rustLegacy() throws {
    let cxxfilt = "c++filt"
    let directory = try TestEnvironment.temporaryDirectory("sym")
    defer { try? FileManager.default.removeItem(at: directory) }
    let binary = try Self.compileRust("legacy", into: directory)
    // Only the fixture's own crate is legacy-mangled; the standard library ships with v0 names.
    let names = try Self.mangledNames(in: binary, prefix: "_ZN").filter {
      $0.range(of: "17h") != nil
    }
    #expect(names.count > 5)
    let expected = try Self.reference(cxxfilt, [], names: names)
    var mismatches: [String] = []
    for (name, want) in zip(names, expected) {
      let ours = Demangler.demangle(name)
      if ours != stripVendorSuffix(removeLegacyHash(want)) {
        mismatches.append("\(name)\n  ours: \(ours ?? "nil")\n  want: \(want)")
      }
    }
    #expect(
      mismatches.isEmpty,
      "\(mismatches.count)/\(names.count):\n\(mismatches.prefix(5).joined(separator: "\n"))")
    #expect(names.contains { Demangler.demangle($0) == "shapes::count_words" })
  }

  @Test("C++ names from g++ agree with c++filt", .requires(.tool("c++filt"), .tool("g++")))
  func cxx() throws {
    let cxxfilt = "c++filt"
    let gxx = "g++"
    let directory = try TestEnvironment.temporaryDirectory("sym")
    defer { try? FileManager.default.removeItem(at: directory) }
    let binary = directory.appendingPathComponent("cxx").path
    _ = try Run.checked(
      [gxx] + [
        "-O2", "-g", fixturesDirectory.appendingPathComponent("templates.cpp").path, "-o", binary,
      ])
    let names = try Self.mangledNames(in: binary, prefix: "_Z")
    #expect(names.count > 10)
    // c++filt writes `> >` and `[clone .cold]`; we follow llvm-symbolizer's `>>` and `(.cold)`.
    let expected = try Self.reference(cxxfilt, [], names: names).map {
      CxxDemangler.llvmStyle($0)
    }
    for (name, want) in zip(names, expected) {
      #expect(Demangler.demangle(name) == want, "\(name)")
    }
    #expect(names.contains { Demangler.demangle($0) == "geometry::Grid<double>::area() const" })
  }

  @Test(
    "Swift names from libswiftCore agree with swift-demangle --no-sugar (the runtime's form)",
    .requires(.tool("swift-demangle"), .tool("swift")))
  func swift() throws {
    let swiftDemangle = "swift-demangle"
    let swift = try #require(TestEnvironment.which("swift"))
    let toolchain = URL(fileURLWithPath: swift).resolvingSymlinksInPath()
      .deletingLastPathComponent()
      .deletingLastPathComponent()
    let library = toolchain.appendingPathComponent("lib/swift/linux/libswiftCore.so").path
    try #require(FileManager.default.fileExists(atPath: library), "no \(library) next to swift")
    let names = try Self.mangledNames(in: library, prefix: "$s", dynamic: true, limit: 500)
    #expect(names.count > 100)
    let expected = try Self.reference(swiftDemangle, ["--compact", "--no-sugar"], names: names)
    for (name, want) in zip(names, expected) {
      #expect(Demangler.demangle(name) == want, "\(name)")
    }
  }

  @Test("plain C names and garbage are left alone")
  func notMangled() {
    for name in [
      "main", "_start", "__libc_start_main", "_R", "_RNv", "_ZN3foo", "_Z", "$s", "_RNvC3foo",
    ] {
      let result = Demangler.demangle(name)
      #expect(result == nil || result != "", "\(name) → \(result ?? "nil")")
    }
    #expect(Demangler.demangle("main") == nil)
    #expect(Demangler.demangle("_RNvC") == nil)
    #expect(Demangler.demangle("_RB_") == nil)  // a back-reference to itself must not loop
  }
}

/// c++filt prints v0 crate roots with their disambiguator, `core[c1f1a4ba060b9bfa]`; we leave those out.
func removeCrateHashes(_ text: String) -> String {
  text.replacingOccurrences(of: #"\[[0-9a-f]+\]"#, with: "", options: .regularExpression)
}

func removeLegacyHash(_ text: String) -> String {
  text.replacingOccurrences(of: #"::h[0-9a-f]{16}"#, with: "", options: .regularExpression)
}

/// c++filt keeps suffixes such as ` (.llvm.123)`; we drop them.
func stripVendorSuffix(_ text: String) -> String {
  text.replacingOccurrences(of: #" \(\.llvm\.[0-9]+\)$"#, with: "", options: .regularExpression)
}
