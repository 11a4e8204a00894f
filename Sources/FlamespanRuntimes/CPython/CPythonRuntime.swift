import FlamespanELF
import FlamespanModel
import FlamespanProcess
import Foundation

/// The CPython plug-in: finds the interpreter in a process (libpython3.X.so or a python binary linked
/// statically, recognised by `_PyRuntime` in its dynamic symbols), tells the sampler how to walk its
/// frames, and names the frames the sampler sends back.
public final class CPythonRuntime: Runtime, @unchecked Sendable {
  public let name = "cpython"

  private let lock = NSLock()
  /// Every file looked at, Python or not, so a process of other code costs a few small reads per file
  /// once.
  private var files: [MappedFileKey: CPythonBinary.Loaded] = [:]
  /// C libraries looked at, with the TSD layout decoded from each (nil: not decoded).
  private var libraries: [MappedFileKey: ThreadSpecificDataLayout?] = [:]
  /// Code objects remembered per process.
  let codeCacheCapacity: Int

  public init(codeCacheCapacity: Int = 4096) { self.codeCacheCapacity = codeCacheCapacity }

  public func attach(pid: Int32, maps: ProcessMaps) -> RuntimeProcess? {
    var seen: Set<MappedFileKey> = []
    for mapping in maps.mappings where mapping.kind == .file || mapping.kind == .deletedFile {
      let key = MappedFileKey(mapping)
      guard seen.insert(key).inserted else { continue }
      guard case .python(let binary) = loaded(mapping, key: key, pid: pid),
        let linkStart = binary.elf.virtualAddress(ofFileOffset: mapping.fileOffset)
      else { continue }
      let process = CPythonProcess(
        pid: pid, binary: binary, loadBias: mapping.start &- linkStart,
        codeCacheCapacity: codeCacheCapacity, decodedTSD: threadSpecificDataLayout(maps, pid: pid))
      process.refresh()
      return process
    }
    return nil
  }

  /// The TSD layout decoded from the `pthread_getspecific` of the process's C library, if it has one
  /// whose code reads as glibc's x86-64 sequence.
  private func threadSpecificDataLayout(_ maps: ProcessMaps, pid: Int32)
    -> ThreadSpecificDataLayout?
  {
    for mapping in maps.mappings where mapping.kind == .file {
      let name = mapping.path.split(separator: "/").last ?? ""
      guard name.hasPrefix("libc.so") || name.hasPrefix("libc-") else { continue }
      let key = MappedFileKey(mapping)
      if let known = lock.withLock({ libraries[key] }) { return known }
      guard let file = FileBytes(regularFileAt: mapping.path) else { continue }
      let decoded = ThreadSpecificDataLayout.decode(libraryReadBy: file.read)
      lock.withLock { libraries[key] = .some(decoded) }
      return decoded
    }
    return nil
  }

  /// How many files were examined (Python or not); for tests.
  var examinedFileCount: Int { lock.withLock { files.count } }

  private func loaded(_ mapping: Mapping, key: MappedFileKey, pid: Int32) -> CPythonBinary.Loaded {
    if let known = lock.withLock({ files[key] }) { return known }
    // A deleted or replaced file is still reachable through the process's map_files while it runs.
    let path =
      mapping.kind == .deletedFile
      ? "/proc/\(pid)/map_files/\(String(mapping.start, radix: 16))-\(String(mapping.limit, radix: 16))"
      : mapping.path
    guard
      let result = CPythonBinary.load(
        path: path, identity: mapping.inode == 0 ? nil : (mapping.device, mapping.inode))
    else { return .notPython }
    lock.withLock { files[key] = result }
    return result
  }
}
