import FlamespanModel

/// The file formats `ProfileExporter` writes, chosen by the output file's extension.
public enum OutputFormat: Sendable, Equatable {
  /// Gzipped pprof protobuf, for `go tool pprof`, Pyroscope and other pprof readers.
  case pprof
  /// One `frame;frame;frame count` line per stack, for flamegraph tools and grep.
  case folded
  /// A self-contained interactive flame graph for a browser.
  case svg
  /// A binary OTLP `ExportProfilesServiceRequest` (opentelemetry-proto v1.10.0), for OTLP collectors.
  case otlp

  public static let supportedExtensions: [String] = [".pb.gz", ".folded", ".svg", ".otlp.pb"]

  public init(path: String) throws(ExportError) {
    let name = AtomicFile.fileName(of: path).lowercased()
    if name.hasSuffix(".pb.gz") && name.count > ".pb.gz".count {
      self = .pprof
    } else if name.hasSuffix(".folded") && name.count > ".folded".count {
      self = .folded
    } else if name.hasSuffix(".svg") && name.count > ".svg".count {
      self = .svg
    } else if name.hasSuffix(".otlp.pb") && name.count > ".otlp.pb".count {
      self = .otlp
    } else {
      throw ExportError(
        code: .unsupportedFormat, path: path,
        message:
          "unknown output extension; supported: \(Self.supportedExtensions.joined(separator: ", "))"
      )
    }
  }

  public var fileExtension: String {
    switch self {
    case .pprof: ".pb.gz"
    case .folded: ".folded"
    case .svg: ".svg"
    case .otlp: ".otlp.pb"
    }
  }
}
