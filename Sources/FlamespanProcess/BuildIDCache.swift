import FlamespanModel
import Foundation

/// Build ids keyed by the (device, inode) of the mapped file, so a library mapped by a thousand processes,
/// or under several paths, is opened once.
public final class BuildIDCache: @unchecked Sendable {
  private struct FileKey: Hashable {
    let device: UInt64
    let inode: UInt64
  }

  private let lock = NSLock()
  // A nil value records that the file has no build id, so it is not read again either.
  private var entries: [FileKey: BuildID?] = [:]
  private var filesReadCount = 0

  public init() {}

  /// How many files were opened to read a build id (cache misses).
  public var filesRead: Int { lock.withLock { filesReadCount } }

  /// The build id of the file behind `mapping` in process `pid`, read on first request.
  public func buildID(for mapping: Mapping, pid: Int32) -> BuildID? {
    // Inode 0 means no stable identity to cache under.
    guard mapping.inode != 0 else { return Self.readBuildID(for: mapping, pid: pid) }
    let key = FileKey(device: mapping.device, inode: mapping.inode)
    if let cached = lock.withLock({ entries[key] }) { return cached }
    let id = Self.readBuildID(for: mapping, pid: pid)
    lock.withLock {
      entries[key] = .some(id)
      filesReadCount += 1
    }
    return id
  }

  /// Finds a path that reaches the very file that was mapped: the plain path, the path inside the process's
  /// mount namespace (containers), or the kernel's handle on the mapping itself (deleted or replaced files).
  static func readBuildID(for mapping: Mapping, pid: Int32) -> BuildID? {
    let mapFile =
      "/proc/\(pid)/map_files/\(String(mapping.start, radix: 16))-\(String(mapping.limit, radix: 16))"
    var candidates: [String] = []
    if mapping.kind == .file {
      candidates.append(mapping.path)
      candidates.append("/proc/\(pid)/root\(mapping.path)")
    }
    candidates.append(mapFile)
    let wanted = (mapping.device, mapping.inode)
    // A file replaced since it was mapped has a new inode: reading it would give the wrong build id.
    for path in candidates {
      guard let found = FileAccess.identity(path: path) else { continue }
      if mapping.inode == 0 || (found.device == wanted.0 && found.inode == wanted.1) {
        return ELFBuildID.read(path: path)
      }
    }
    // Overlay file systems report other device numbers through the overlay; when identities cannot be
    // matched, the map_files handle (root only) is still the exact mapped file, and the path is a fallback.
    if FileAccess.identity(path: mapFile) != nil { return ELFBuildID.read(path: mapFile) }
    for path in candidates where FileAccess.identity(path: path) != nil {
      return ELFBuildID.read(path: path)
    }
    return nil
  }
}
