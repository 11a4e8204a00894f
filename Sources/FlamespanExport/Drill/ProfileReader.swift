import FlamespanModel
import FlamespanOTLP

/// Reads a profile file back into a `Profile`, whichever format Flamespan can read it from.
public enum ProfileReader {
  /// The formats a profile can be read from.
  public enum InputFormat: Sendable, Equatable {
    /// pprof, gzipped or raw.
    case pprof
    /// A binary OTLP `ExportProfilesServiceRequest` (v1.10.0 layout).
    case otlp
  }

  /// `.otlp.pb` files are OTLP; anything else is read as pprof, which also covers raw `.pb` files and
  /// gzip data under any name. Protobuf bytes do not say which schema wrote them, hence the name rule.
  public static func format(of path: String) -> InputFormat {
    AtomicFile.fileName(of: path).lowercased().hasSuffix(".otlp.pb") ? .otlp : .pprof
  }

  public static func read(from path: String) throws(ExportError) -> Profile {
    let bytes: [UInt8]
    switch SystemCalls.readWholeFile(path) {
    case .success(let read): bytes = read
    case .failure(let failure):
      throw ExportError(code: .readFailed, path: path, errno: failure.code, message: "cannot read")
    }
    return try decode(bytes, format: format(of: path), path: path)
  }

  public static func decode(_ bytes: [UInt8], format: InputFormat, path: String? = nil)
    throws(ExportError) -> Profile
  {
    switch format {
    case .pprof:
      do {
        return try PprofDecoder.decode(bytes)
      } catch {
        var located = error
        located.path = path
        throw located
      }
    case .otlp:
      do {
        return try OTLPProfileDecoder.decode(bytes)
      } catch {
        throw ExportError(code: .malformedProfile, path: path, message: error.description)
      }
    }
  }
}
