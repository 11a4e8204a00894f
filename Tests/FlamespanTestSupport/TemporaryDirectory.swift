import Foundation
import Glibc

/// A fresh directory for one test, removed when the last reference to it goes. Its path is canonical
/// (symbolic links resolved), because the kernel reports canonical paths in /proc/PID/maps.
public final class TemporaryDirectory: @unchecked Sendable {
  public let url: URL
  public var path: String { url.path }

  public init(_ label: String = "test") throws {
    let created = try TestEnvironment.temporaryDirectory(label)
    guard let canonical = realpath(created.path, nil) else {
      throw TestFailure("realpath \(created.path) failed: errno \(errno)")
    }
    defer { free(canonical) }
    url = URL(fileURLWithPath: String(cString: canonical), isDirectory: true)
  }

  deinit { try? FileManager.default.removeItem(at: url) }

  /// The path of `name` inside the directory.
  public func file(_ name: String) -> String { url.appendingPathComponent(name).path }

  public var contents: [String] {
    (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
  }
}
