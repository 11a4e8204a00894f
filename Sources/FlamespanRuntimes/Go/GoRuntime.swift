import FlamespanModel
import FlamespanProcess
import Foundation

/// The Go runtime plug-in: Go code is unwound by `.gopclntab` SP deltas and named by its function,
/// file and line tables, which every Go binary carries even when stripped.
public final class GoRuntime: Runtime, @unchecked Sendable {
  public let name = "go"

  private let lock = NSLock()
  /// Every file looked at, Go or not, so a process of non-Go code costs one header read per file once.
  private var files: [MappedFileKey: GoBinary.Loaded] = [:]
  private var failureReasons: [String: String] = [:]

  /// Why Go binaries could not be used, by path (for summaries).
  public var failures: [String: String] { lock.withLock { failureReasons } }

  public init() {}

  public func attach(pid: Int32, maps: ProcessMaps) -> RuntimeProcess? {
    var images: [GoProcess.Image] = []
    for mapping in maps.mappings where mapping.kind == .file || mapping.kind == .deletedFile {
      guard case .go(let binary) = loaded(mapping, pid: pid),
        let linkStart = binary.elf.virtualAddress(ofFileOffset: mapping.fileOffset)
      else { continue }
      images.append(GoProcess.Image(mapping: mapping, binary: binary, linkStart: linkStart))
    }
    return images.isEmpty ? nil : GoProcess(pid: pid, images: images)
  }

  /// How many files were examined (Go or not); for tests and summaries.
  public var examinedFileCount: Int { lock.withLock { files.count } }

  private func loaded(_ mapping: Mapping, pid: Int32) -> GoBinary.Loaded {
    let key = MappedFileKey(mapping)
    if let known = lock.withLock({ files[key] }) { return known }
    // A deleted or replaced file is still reachable through the process's map_files while it runs.
    let path =
      mapping.kind == .deletedFile
      ? "/proc/\(pid)/map_files/\(String(mapping.start, radix: 16))-\(String(mapping.limit, radix: 16))"
      : mapping.path
    let result = GoBinary.load(
      path: path, identity: mapping.inode == 0 ? nil : (mapping.device, mapping.inode))
    lock.withLock {
      // A file that could not be opened may be readable for the next process; remember Go/non-Go only.
      switch result {
      case .failed(let reason):
        failureReasons[mapping.path] = reason
        if reason.hasPrefix("cannot open") { return }
      default: break
      }
      files[key] = result
    }
    return result
  }
}
