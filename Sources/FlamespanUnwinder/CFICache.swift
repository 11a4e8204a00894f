import FlamespanELF
import FlamespanModel
import FlamespanProcess
import Glibc

/// Parsed CFI per mapped file, keyed by (device, inode, build id) so one file under several paths or in many
/// processes is parsed once; bounded, least recently used out. Failures are cached too (briefly), so a
/// file we cannot read does not cost an open() per sample.
final class CFICache {
  struct Key: Hashable {
    var device: UInt64
    var inode: UInt64
    var path: String
    /// Tells apart two files that reused one inode over time, when the tracker read a build id.
    var buildID: BuildID?
  }

  final class Loaded {
    let information: CallFrameInformation?
    let failure: String?
    var lastUse: UInt64 = 0
    /// Rules by link-time address; most samples hit a few hundred hot addresses.
    var rules: [UInt64: Result<FrameRule?, CFIError>] = [:]

    init(information: CallFrameInformation?, failure: String?) {
      self.information = information
      self.failure = failure
    }
  }

  let capacity: Int
  static let rulesPerFile = 8192
  private var files: [Key: Loaded] = [:]
  private var clock: UInt64 = 0
  private var vdso: Loaded?
  var statistics = UnwinderStatistics()

  init(capacity: Int) {
    self.capacity = max(capacity, 1)
  }

  var count: Int { files.count }

  func cfi(for mapping: Mapping, pid: Int32) -> Loaded {
    if mapping.kind == .vdso { return vdsoInformation() }
    // Consecutive frames are mostly in the same file: compare integers before hashing a key.
    if let last = lastLookup, last.start == mapping.start, last.inode == mapping.inode,
      last.device == mapping.device, last.pid == pid, last.buildID == mapping.buildID
    {
      clock += 1
      last.loaded.lastUse = clock
      return last.loaded
    }
    let loaded = lookUp(mapping, pid: pid)
    lastLookup = LastLookup(
      start: mapping.start, inode: mapping.inode, device: mapping.device, pid: pid,
      buildID: mapping.buildID, loaded: loaded)
    return loaded
  }

  private struct LastLookup {
    var start: UInt64
    var inode: UInt64
    var device: UInt64
    var pid: Int32
    var buildID: BuildID?
    var loaded: Loaded
  }
  private var lastLookup: LastLookup?

  private func lookUp(_ mapping: Mapping, pid: Int32) -> Loaded {
    let key = Key(
      device: mapping.device, inode: mapping.inode, path: mapping.inode == 0 ? mapping.path : "",
      buildID: mapping.buildID)
    clock += 1
    if let loaded = files[key] {
      loaded.lastUse = clock
      return loaded
    }
    let loaded = load(mapping, pid: pid)
    loaded.lastUse = clock
    if files.count >= capacity, let oldest = files.min(by: { $0.value.lastUse < $1.value.lastUse })
    {
      files.removeValue(forKey: oldest.key)
      statistics.filesEvicted += 1
    }
    files[key] = loaded
    return loaded
  }

  private func load(_ mapping: Mapping, pid: Int32) -> Loaded {
    // A deleted or replaced file is still reachable through the process's map_files while it runs.
    let path =
      mapping.kind == .deletedFile
      ? "/proc/\(pid)/map_files/\(String(mapping.start, radix: 16))-\(String(mapping.limit, radix: 16))"
      : mapping.path
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else {
      return Loaded(
        information: nil, failure: "cannot open \(path): \(String(cString: strerror(errno)))")
    }
    // The descriptor stays open while the file is cached: FDEs are read from it as they are needed.
    let file = FileBytes(descriptor: descriptor)
    var status = stat()
    if fstat(descriptor, &status) == 0, mapping.inode != 0,
      UInt64(status.st_ino) != mapping.inode || UInt64(status.st_dev) != mapping.device
    {
      return Loaded(information: nil, failure: "\(path) was replaced since it was mapped")
    }
    do {
      let sections = try ELFSections(read: file.read)
      return makeLoaded(sections, read: file.read, name: path)
    } catch {
      return Loaded(information: nil, failure: "\(path): \(error.reason)")
    }
  }

  private func makeLoaded(
    _ sections: ELFSections, read: @escaping (UInt64, Int) -> [UInt8]?, name: String
  ) -> Loaded {
    let information = CallFrameInformation(sections: sections, read: read)
    statistics.filesParsed += 1
    statistics.corruptEntriesSkipped += information.skippedEntries
    if information.isEmpty {
      return Loaded(information: nil, failure: "\(name) has no .eh_frame or .debug_frame CFI")
    }
    return Loaded(information: information, failure: nil)
  }

  /// The vDSO's CFI exists only in memory. Every 64-bit process of this kernel maps the same vDSO image,
  /// so ours (bounded by our own maps entry) stands in for the target's.
  private func vdsoInformation() -> Loaded {
    if let vdso { return vdso }
    let loaded: Loaded
    let ownMaps = try? ProcessInspector.readMaps(pid: getpid(), buildIDCache: nil)
    if let mapping = ownMaps?.mappings.first(where: { $0.kind == MappingKind.vdso }) {
      let image = MemoryImage(base: mapping.start, size: mapping.limit - mapping.start)
      do {
        loaded = makeLoaded(try ELFSections(read: image.read), read: image.read, name: "[vdso]")
      } catch {
        loaded = Loaded(information: nil, failure: "[vdso]: \(error.reason)")
      }
    } else {
      loaded = Loaded(information: nil, failure: "vDSO: this process has no vDSO to read CFI from")
    }
    vdso = loaded
    return loaded
  }

  func rule(in loaded: Loaded, at address: UInt64) -> Result<FrameRule?, CFIError> {
    if let cached = loaded.rules[address] {
      statistics.ruleCacheHits += 1
      return cached
    }
    statistics.ruleCacheMisses += 1
    guard let information = loaded.information else { return .success(nil) }
    let result: Result<FrameRule?, CFIError>
    do { result = .success(try information.rule(at: address)) } catch { result = .failure(error) }
    if loaded.rules.count >= Self.rulesPerFile { loaded.rules.removeAll(keepingCapacity: true) }
    loaded.rules[address] = result
    return result
  }
}

/// Bounded reads of an ELF image mapped in this process (the vDSO).
private struct MemoryImage {
  let base: UInt64
  let size: UInt64

  func read(_ offset: UInt64, _ count: Int) -> [UInt8]? {
    guard count >= 0, offset <= size, UInt64(count) <= size - offset,
      let pointer = UnsafeRawPointer(bitPattern: UInt(base + offset))
    else { return nil }
    return Array(UnsafeRawBufferPointer(start: pointer, count: count))
  }
}
