import FlamespanModel
import FlamespanOTLP

/// Writes a profile to a file in the format its extension names.
public enum ProfileExporter {
  /// Renders `profile` and replaces `path` atomically. `title` heads the SVG flame graph.
  public static func write(_ profile: Profile, to path: String, title: String) throws(ExportError) {
    let format = try OutputFormat(path: path)
    try checkDirectory(of: path)
    let bytes: [UInt8]
    switch format {
    case .pprof: bytes = try Gzip.compress(PprofEncoder.encode(profile))
    case .folded: bytes = Array(FoldedStacks.render(profile).utf8)
    case .svg: bytes = Array(FlameGraphSVG.render(profile, title: title).utf8)
    case .otlp:
      do {
        bytes = try OTLPProfileEncoder.encode(profile, resource: .local())
      } catch {
        throw ExportError(code: .writeFailed, path: path, message: error.description)
      }
    }
    do {
      try AtomicFile.write(bytes, to: path)
    } catch {
      throw ExportError(error, writing: path, byteCount: bytes.count)
    }
  }

  /// Checks that the path is writable before a long recording starts (creates+removes nothing permanent; checks the dir
  /// exists and is writable and the extension is known)
  public static func validateOutputPath(_ path: String) throws(ExportError) {
    _ = try OutputFormat(path: path)
    try validateWritablePath(path)
  }

  /// The checks of `validateOutputPath` but the format's: for outputs of any name, such as the spans'
  /// OTLP/JSON. Run before a recording starts, so that a typo costs nothing.
  public static func validateWritablePath(_ path: String) throws(ExportError) {
    try checkDirectory(of: path)
    if case (.directory, _) = SystemCalls.kind(of: path) {
      throw ExportError(code: .notWritable, path: path, message: "is a directory, not a file")
    }
    do {
      try AtomicFile.probeWritable(directoryOf: path)
    } catch {
      throw ExportError(error, writing: path)
    }
  }

  private static func checkDirectory(of path: String) throws(ExportError) {
    let directory = AtomicFile.directory(of: path)
    switch SystemCalls.kind(of: directory) {
    case (.directory, _): return
    case (.missing, let code):
      throw ExportError(
        code: .directoryMissing, path: directory, errno: code,
        message: "the output directory does not exist")
    case (.other, nil):
      throw ExportError(code: .directoryMissing, path: directory, message: "is not a directory")
    case (.other, let code):
      throw ExportError(
        code: .notWritable, path: directory, errno: code,
        message: "cannot inspect the output directory")
    }
  }

  /// Reads a pprof file (gzipped or not) back into a profile, for `drill` and other readers.
  public static func readPprof(from path: String) throws(ExportError) -> Profile {
    switch SystemCalls.readWholeFile(path) {
    case .success(let bytes): return try PprofDecoder.decode(bytes)
    case .failure(let failure):
      throw ExportError(code: .readFailed, path: path, errno: failure.code, message: "cannot read")
    }
  }
}
