// swift-tools-version:6.0
import PackageDescription

// Each C library has exactly one owner module: libbpf → FlamespanBPF, libdw/libelf → FlamespanSymbolizer,
// zlib → FlamespanExport, libsqlite3 (through GRDB) → FlamespanAgent, BoringSSL (through swift-nio-ssl and AsyncHTTPClient) → FlamespanAgent. Nothing above
// those modules sees a C type.
let package = Package(
  name: "Flamespan",
  platforms: [.macOS(.v13)],
  products: [
    .executable(name: "flamespan", targets: ["FlamespanCLI"]),
    .executable(name: "flamespan-store-bench", targets: ["FlamespanStoreBench"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    // Runtime for the OTLP profiles and pprof code generated from proto/ (scripts/generate-protos.sh).
    .package(url: "https://github.com/apple/swift-protobuf", from: "1.28.0"),
    // The agent's export client: HTTP/1.1 and HTTP/2 with keep-alive, TLS through swift-nio-ssl.
    .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    .package(url: "https://github.com/apple/swift-nio", from: "2.100.0"),
    .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.30.0"),
    // The agent's local store: SQLite in WAL mode (Debian's libsqlite3) through GRDB's DatabasePool.
    .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
  ],
  targets: [
    // Structs carried by the ring buffers, shared byte for byte with bpf/*.bpf.c.
    .target(name: "CFlamespanABI"),
    .systemLibrary(name: "CLibBPF", pkgConfig: "libbpf", providers: [.apt(["libbpf-dev"])]),
    .systemLibrary(
      name: "CLibDW", pkgConfig: "libdw", providers: [.apt(["libdw-dev", "libelf-dev"])]),
    .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
    .target(name: "CBPFShim", dependencies: ["CLibBPF"]),
    .target(name: "FlamespanModel"),
    .target(name: "FlamespanProcess", dependencies: ["FlamespanModel", "FlamespanELF"]),
    // The one ELF reader: headers, segments, sections, notes and build ids, read on demand; pure Swift.
    .target(name: "FlamespanELF"),
    // Language runtimes as plug-ins (Go, JIT perf maps): detection, unwinding and naming of their code.
    .target(
      name: "FlamespanRuntimes",
      dependencies: ["FlamespanModel", "FlamespanProcess", "FlamespanELF"]),
    .target(
      name: "FlamespanSymbolizer", dependencies: ["FlamespanModel", "FlamespanELF", "CLibDW"]),
    .target(
      name: "FlamespanBPF",
      dependencies: ["FlamespanModel", "CFlamespanABI", "CLibBPF", "CBPFShim"],
      plugins: ["BPFCompiler"]
    ),
    // DWARF CFI unwinding of copied user stacks; a CFI evaluator of its own, so no C library to own.
    .target(
      name: "FlamespanUnwinder",
      dependencies: ["FlamespanModel", "FlamespanProcess", "FlamespanELF", "FlamespanRuntimes"]),
    // Span assembly for `record`: exchanges to spans, and the index that names samples' spans.
    .target(name: "FlamespanL7", dependencies: ["FlamespanModel"]),
    .target(
      name: "FlamespanRecorder",
      dependencies: [
        "FlamespanModel", "FlamespanProcess", "FlamespanSymbolizer", "FlamespanBPF",
        "FlamespanUnwinder",
        "FlamespanL7", "FlamespanRuntimes",
      ]
    ),
    // Generated code of every proto/ file (OTLP profiles and traces of opentelemetry-proto v1.10.0, and
    // pprof's profile.proto) and the OTLP encoders; the generated messages stay `package`-visible.
    .target(
      name: "FlamespanOTLP",
      dependencies: ["FlamespanModel", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
      exclude: ["Generated/proto-manifest.sha256"]
    ),
    // pprof through the messages generated from proto/pprof/profile.proto (they live in FlamespanOTLP).
    .target(
      name: "FlamespanExport",
      dependencies: [
        "FlamespanModel", "FlamespanOTLP", "CZlib",
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ]),
    // The continuous agent: export queue and journal, local store, UI/API server, typed configuration.
    .target(
      name: "FlamespanAgent",
      dependencies: [
        "FlamespanModel", "FlamespanRecorder", "FlamespanExport", "FlamespanOTLP", "FlamespanBPF",
        "FlamespanRuntimes",
        .product(name: "AsyncHTTPClient", package: "async-http-client"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "GRDB", package: "GRDB.swift"),
      ]),
    .executableTarget(
      name: "FlamespanCLI",
      dependencies: [
        "FlamespanModel", "FlamespanProcess", "FlamespanSymbolizer", "FlamespanBPF",
        "FlamespanRecorder", "FlamespanL7", "FlamespanRuntimes",
        "FlamespanExport", "FlamespanOTLP", "FlamespanAgent",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]
    ),
    // bench/store: fills a store with generated hours of spans and linked samples (the SQLite store and
    // the earlier file format) and times the drill-down queries; also the writer that the store's
    // kill -9 test kills (`crash-writer`).
    .executableTarget(
      name: "FlamespanStoreBench",
      dependencies: ["FlamespanAgent", "FlamespanModel", "FlamespanExport"],
      path: "bench/store/Sources"),
    .plugin(name: "BPFCompiler", capability: .buildTool()),
    // The one home of the tests' helpers: locating the package, building samples/, running programs in
    // the background or to completion, loopback ports, temporary directories, waiting, and the
    // `.requires(…)` trait that skips a test (or fails it under CI=true) when the machine lacks what it
    // needs. Also the span profile built in code that the OTLP, export and end-to-end suites share.
    .target(
      name: "FlamespanTestSupport", dependencies: ["FlamespanModel"],
      path: "Tests/FlamespanTestSupport"),
    .testTarget(
      name: "FlamespanModelTests", dependencies: ["FlamespanModel", "FlamespanTestSupport"]),
    .testTarget(
      name: "FlamespanL7Tests",
      dependencies: ["FlamespanL7", "FlamespanModel", "FlamespanExport", "FlamespanTestSupport"]),
    .testTarget(
      name: "FlamespanUnwinderTests",
      dependencies: [
        "FlamespanUnwinder", "FlamespanProcess", "FlamespanModel", "FlamespanRuntimes",
        "FlamespanTestSupport",
      ],
      exclude: ["Fixtures"]),
    .testTarget(
      name: "FlamespanProcessTests",
      dependencies: ["FlamespanProcess", "FlamespanELF", "FlamespanTestSupport"]),
    .testTarget(
      name: "FlamespanRuntimesTests",
      dependencies: [
        "FlamespanRuntimes", "FlamespanELF", "FlamespanProcess", "FlamespanModel",
        "FlamespanTestSupport",
      ],
      exclude: ["Fixtures"]),
    .testTarget(
      name: "FlamespanSymbolizerTests",
      dependencies: ["FlamespanSymbolizer", "FlamespanModel", "FlamespanTestSupport"]),
    .testTarget(
      name: "FlamespanExportTests",
      dependencies: ["FlamespanExport", "FlamespanModel", "FlamespanOTLP", "FlamespanTestSupport"]),
    .testTarget(
      name: "FlamespanOTLPTests",
      dependencies: ["FlamespanOTLP", "FlamespanExport", "FlamespanModel", "FlamespanTestSupport"],
      exclude: ["Python"]
    ),
    .testTarget(
      name: "FlamespanBPFTests",
      // FlamespanELF and FlamespanModel for the Python walk tests: _PyRuntime from .dynsym, the layout.
      dependencies: [
        "FlamespanBPF", "CFlamespanABI", "FlamespanTestSupport", "FlamespanELF", "FlamespanModel",
      ]),
    // The agent's queue, journal, store, configuration, server and exporter as units, on real files and
    // real loopback sockets.
    .testTarget(
      name: "FlamespanRecorderTests",
      dependencies: [
        "FlamespanRecorder", "FlamespanRuntimes", "FlamespanModel", "FlamespanBPF", "FlamespanProcess",
      ]),
    .testTarget(
      name: "FlamespanAgentTests",
      dependencies: ["FlamespanAgent", "FlamespanModel", "FlamespanTestSupport"]),
    .testTarget(
      name: "FlamespanEndToEndTests",
      // FlamespanAgent for the TLS export tests, which drive the exporter directly.
      dependencies: [
        "FlamespanModel", "FlamespanExport", "FlamespanProcess", "FlamespanTestSupport",
        "FlamespanAgent",
      ]
    ),
  ],
  swiftLanguageModes: [.v6]
)

// libFuzzer targets (Fuzz/), declared only when FLAMESPAN_FUZZ=1: scripts/fuzz.sh sets it and builds them
// with -sanitize=fuzzer,address in .build/fuzz. Without it `swift build` and `swift test` never see them,
// so nothing links libFuzzer's main, and the normal build costs not a second more.
if Context.environment["FLAMESPAN_FUZZ"] == "1" {
  package.targets += [
    .target(name: "CFuzzDriver", path: "Fuzz/Targets/CFuzzDriver"),
    .target(
      name: "FuzzSupport", dependencies: ["CFuzzDriver", "FlamespanELF"],
      path: "Fuzz/Targets/Support"),
  ]
  let fuzzTargets: [(product: String, directory: String, dependencies: [Target.Dependency])] = [
    ("fuzz-elf", "ELF", ["FlamespanELF", "FlamespanRuntimes"]),
    ("fuzz-cfi", "CFI", ["FlamespanUnwinder"]),
    ("fuzz-pprof", "Pprof", ["FlamespanExport"]),
    ("fuzz-otlp", "OTLP", ["FlamespanOTLP"]),
    ("fuzz-perfmap", "PerfMap", ["FlamespanRuntimes"]),
    ("fuzz-gopclntab", "GoPCLN", ["FlamespanRuntimes"]),
  ]
  for fuzz in fuzzTargets {
    let name = "Fuzz" + fuzz.directory
    // main.swift: LLVMFuzzerTestOneInput (@_cdecl), and top-level code that starts libFuzzer's driver.
    package.targets.append(
      .executableTarget(
        name: name, dependencies: fuzz.dependencies + ["FuzzSupport"],
        path: "Fuzz/Targets/\(fuzz.directory)"))
    package.products.append(.executable(name: fuzz.product, targets: [name]))
  }
}
