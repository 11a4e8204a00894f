import FlamespanTestSupport
import Foundation
import Testing

/// The generated Swift under Sources/FlamespanOTLP/Generated must be what scripts/generate-protos.sh
/// makes from proto/. The manifest it writes pins both sides by SHA-256; when the generator is installed
/// the code is also regenerated and compared byte for byte.
@Suite struct GeneratedCodeDriftTests {
  static let root = TestEnvironment.packageRoot
  static let generatedDirectory = root.appendingPathComponent("Sources/FlamespanOTLP/Generated")
  static let manifestPath = generatedDirectory.appendingPathComponent("proto-manifest.sha256").path

  /// Manifest entries as path (relative to the package root) → recorded digest.
  static func manifestEntries() throws -> [String: String] {
    let text = try String(contentsOfFile: manifestPath, encoding: .utf8)
    var entries: [String: String] = [:]
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
      let parts = line.split(separator: " ", maxSplits: 1)
      guard parts.count == 2 else { continue }
      let name = parts[1].trimmingCharacters(in: .whitespaces)
      let path = name.hasPrefix("Generated/") ? "Sources/FlamespanOTLP/\(name)" : name
      entries[path] = String(parts[0])
    }
    return entries
  }

  static func sha256(_ paths: [String]) throws -> [String: String] {
    let result = try Run.command(["sha256sum"] + paths, currentDirectory: root)
    guard result.status == 0 else { throw TestFailure("sha256sum failed: \(result.stderr)") }
    var digests: [String: String] = [:]
    for line in result.stdout.split(separator: "\n") {
      let parts = line.split(separator: " ", maxSplits: 1)
      digests[parts[1].trimmingCharacters(in: .whitespaces)] = String(parts[0])
    }
    return digests
  }

  static func files(under directory: URL, suffix: String) -> [String] {
    let enumerator = FileManager.default.enumerator(atPath: directory.path)
    var found: [String] = []
    while let name = enumerator?.nextObject() as? String {
      if name.hasSuffix(suffix) { found.append(name) }
    }
    return found.sorted()
  }

  @Test func manifestMatchesProtoSourcesAndGeneratedFiles() throws {
    let recorded = try Self.manifestEntries()
    let protos = Self.files(under: Self.root.appendingPathComponent("proto"), suffix: ".proto")
      .map { "proto/\($0)" }
    let generated = Self.files(under: Self.generatedDirectory, suffix: ".pb.swift")
      .map { "Sources/FlamespanOTLP/Generated/\($0)" }
    // opentelemetry-proto's common, resource, profiles, profiles_service, trace and trace_service, and
    // pprof's profile.proto.
    #expect(protos.count == 7)
    #expect(generated.count == protos.count)
    // Every file on disk is in the manifest and vice versa: an added or removed .proto is drift too.
    #expect(Set(recorded.keys) == Set(protos + generated))
    let actual = try Self.sha256(protos + generated)
    for path in protos + generated {
      #expect(
        actual[path] == recorded[path],
        "\(path) changed since the last scripts/generate-protos.sh run; rerun it and commit the result"
      )
    }
  }

  /// scripts/test.sh builds protoc-gen-swift from the resolved swift-protobuf and sets PROTOC_GEN_SWIFT.
  static var protocGenSwift: String? {
    ProcessInfo.processInfo.environment["PROTOC_GEN_SWIFT"]
      ?? TestEnvironment.which("protoc-gen-swift")
  }

  @Test(
    .requires(
      .tool("protoc"),
      .check {
        protocGenSwift == nil
          ? "protoc-gen-swift is neither on PATH nor in PROTOC_GEN_SWIFT (run scripts/test.sh)"
          : nil
      }))
  func regeneratingGivesTheCommittedBytes() throws {
    let plugin = try #require(Self.protocGenSwift)
    let output = try TestEnvironment.temporaryDirectory("protos")
    defer { try? FileManager.default.removeItem(at: output) }
    let result = try Run.command(
      [Self.root.appendingPathComponent("scripts/generate-protos.sh").path, output.path],
      environment: ["PROTOC_GEN_SWIFT": plugin])
    try #require(result.status == 0, "generate-protos.sh failed: \(result.stderr)")
    let fresh = Self.files(under: output, suffix: "")
    let committed = Self.files(under: Self.generatedDirectory, suffix: "")
    #expect(fresh == committed)
    for name in committed {
      let old = FileManager.default.contents(
        atPath: Self.generatedDirectory.appendingPathComponent(name).path)
      let new = FileManager.default.contents(atPath: output.appendingPathComponent(name).path)
      #expect(old == new, "Generated/\(name) differs from a fresh generation")
    }
  }

  /// Our .proto files restate the v1.10.0 layout; the PyPI descriptors are the reference for it.
  @Test(.requires(.tool("protoc"), .pythonOTLP))
  func protoSourcesMatchTheUpstreamDescriptors() throws {
    let output = try TestEnvironment.temporaryDirectory("descriptors")
    defer { try? FileManager.default.removeItem(at: output) }
    let descriptorSet = output.appendingPathComponent("flamespan.desc").path
    // pprof's profile.proto is not part of opentelemetry-proto; proto/README.md says how it was checked.
    let protos = Self.files(under: Self.root.appendingPathComponent("proto"), suffix: ".proto")
      .filter { $0.hasPrefix("opentelemetry/") }
    let compiled = try Run.command(
      ["protoc", "-I", "proto", "--include_imports", "--descriptor_set_out=\(descriptorSet)"]
        + protos, currentDirectory: Self.root)
    try #require(compiled.status == 0, "protoc failed: \(compiled.stderr)")
    let compared = try PythonOTLP.run(script: "compare_descriptors.py", [descriptorSet])
    #expect(compared.status == 0, "\(compared.stdout)\(compared.stderr)")
    #expect(compared.stdout.contains(" 0 differences"))
  }
}
