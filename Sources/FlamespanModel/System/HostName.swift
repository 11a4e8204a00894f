#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// This machine's name, for the `host.name` resource attribute of spans and profiles.
public enum HostName {
  /// nil when gethostname fails or returns an empty name; callers choose their own fallback.
  public static func current() -> String? {
    // HOST_NAME_MAX is 64 on Linux; the extra byte keeps the text terminated even if it was cut.
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count - 1) == 0 else { return nil }
    let name = String(
      decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return name.isEmpty ? nil : name
  }
}
