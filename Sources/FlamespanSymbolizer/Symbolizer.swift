import FlamespanModel
import Synchronization

/// Resolves addresses to functions, source lines and inline chains, from DWARF when a file (or its separate
/// debug file) has it, from the ELF symbol tables otherwise, and from /proc/kallsyms for the kernel.
///
/// Thread-safe: one lock guards the cache and the libdw handles (which are not safe to share), so concurrent
/// callers are serialised. Parsed files are cached by device and inode, bounded by `maxCachedFiles` and,
/// when set, by the estimated bytes they hold (`maxCachedBytes`).
public final class Symbolizer: @unchecked Sendable {
  private struct State {
    var files: LRUCache<FileIdentity, Result<ObjectFile, SymbolizerError>>
    var statistics = SymbolizerStatistics()
    var kernel: Result<KernelSymbols, KernelSymbols.LoadError>?
  }

  private let options: SymbolizerOptions
  private let configuration: DwflConfiguration
  private let state: Mutex<State>

  public init(options: SymbolizerOptions = .init()) {
    self.options = options
    configuration = DwflConfiguration(debugDirectories: options.debugDirectories)
    state = Mutex(State(files: LRUCache(capacity: options.maxCachedFiles)))
  }

  public var statistics: SymbolizerStatistics {
    state.withLock { $0.statistics }
  }

  /// ELF virtual addresses exactly as `llvm-symbolizer --obj=PATH` takes them. Throws only when the file as a
  /// whole cannot be used (missing, not ELF, corrupt headers); a bad single address gives an empty frames
  /// list with a reason. Results are in the order of `virtualAddresses`; `mapping` is nil in them.
  public func symbolize(binary path: String, virtualAddresses: [UInt64]) throws(SymbolizerError)
    -> [ResolvedLocation]
  {
    let identity = try FileProbe.identify(path: path)
    return try state.withLock { (state) throws(SymbolizerError) -> [ResolvedLocation] in
      let file = try Self.objectFile(
        path: path, identity: identity, state: &state, configuration: configuration)
      let resolved = Self.resolve(virtualAddresses, in: file, statistics: &state.statistics)
      enforceBudget(on: &state, keepingNewest: true)
      return resolved.enumerated().map {
        ResolvedLocation(
          address: virtualAddresses[$0.offset], mapping: nil, frames: $0.element.frames,
          unknownReason: $0.element.reason)
      }
    }
  }

  /// For a caller that works in batches, such as one window at a time, between batches: drops least
  /// recently used files until the cache is within `maxCachedBytes` (the most recent one included, which a
  /// lookup would keep), then gives back the pages of the kept files that were read through their file
  /// mappings (DWARF, string and symbol tables). The next batch reads the pages it needs from the page cache
  /// again. Without a byte budget only the pages are given back.
  public func trimToMemoryBudget() {
    state.withLock { state in
      enforceBudget(on: &state, keepingNewest: false)
      let files = state.files.values.compactMap { try? $0.get() }
      guard !files.isEmpty else { return }
      let mappings = MappedFilePages.mappings()
      for file in files { file.releaseResidentPages(mappings: mappings) }
    }
  }

  /// Where the cached files' images lie in this process. Tests check these exact ranges, because other
  /// mappings of the same paths may belong to another symbolizer working at the same time.
  var mappedImagesOfCachedFiles: [Range<UInt>] {
    state.withLock { state in
      state.files.values.compactMap { try? $0.get() }.flatMap(\.mappedImages)
    }
  }

  private func enforceBudget(on state: inout State, keepingNewest: Bool) {
    if let budget = options.maxCachedBytes {
      state.statistics.evictions += state.files.evict(
        toCost: budget, keepingNewest: keepingNewest, cost: Self.estimatedBytes)
    }
    state.statistics.cachedBytes = state.files.totalCost(Self.estimatedBytes)
  }

  private static func estimatedBytes(_ entry: Result<ObjectFile, SymbolizerError>) -> Int {
    switch entry {
    case .success(let file): return file.estimatedBytes
    // The remembered error: a path and a message.
    case .failure: return 512
    }
  }

  /// Runtime addresses of a process inside `mapping` (a `.file` mapping from /proc/PID/maps): each becomes a
  /// file offset, then an ELF virtual address through the PT_LOAD program headers. Never throws: failures
  /// become unknown locations with `unknownReason`. Each returned location has `mapping` set.
  public func symbolize(mapping: Mapping, addresses: [UInt64]) -> [ResolvedLocation] {
    func unknown(_ reason: String) -> [ResolvedLocation] {
      state.withLock { $0.statistics.addressesUnknown += addresses.count }
      return addresses.map {
        ResolvedLocation(address: $0, mapping: mapping, frames: [], unknownReason: reason)
      }
    }
    switch mapping.kind {
    case .file, .deletedFile: break
    case .vdso: return unknown("[vdso]")
    case .anonymous: return unknown("anonymous executable memory (JIT or trampoline)")
    case .special: return unknown("special mapping \(mapping.path)")
    case .kernel: return symbolizeKernel(addresses: addresses)
    }
    let identity: FileIdentity
    do {
      identity = try FileProbe.identify(path: mapping.path)
    } catch {
      return unknown(error.description)
    }
    return state.withLock { state -> [ResolvedLocation] in
      // Also on the early returns: a file parsed only to find its build id does not match still counts.
      defer { enforceBudget(on: &state, keepingNewest: true) }
      let opened = Result { () throws(SymbolizerError) in
        try Self.objectFile(
          path: mapping.path, identity: identity, state: &state, configuration: configuration)
      }
      let file: ObjectFile
      switch opened {
      case .success(let success): file = success
      case .failure(let error):
        state.statistics.addressesUnknown += addresses.count
        return addresses.map {
          ResolvedLocation(
            address: $0, mapping: mapping, frames: [], unknownReason: error.description)
        }
      }
      if let expected = mapping.buildID, let actual = file.buildID, expected != actual {
        state.statistics.addressesUnknown += addresses.count
        let reason = "build id mismatch: mapped \(expected), file on disk \(actual)"
        return addresses.map {
          ResolvedLocation(address: $0, mapping: mapping, frames: [], unknownReason: reason)
        }
      }
      var results = addresses.map { ResolvedLocation(address: $0, mapping: mapping, frames: []) }
      var resolvable: [(index: Int, virtualAddress: UInt64)] = []
      for (index, address) in addresses.enumerated() {
        guard mapping.contains(address) else {
          results[index].unknownReason = "address outside its mapping"
          state.statistics.addressesUnknown += 1
          continue
        }
        let offset = mapping.fileOffset(of: address)
        guard let virtualAddress = file.layout.virtualAddress(ofFileOffset: offset) else {
          results[index].unknownReason =
            "file offset 0x\(String(offset, radix: 16)) is in no PT_LOAD segment"
          state.statistics.addressesUnknown += 1
          continue
        }
        resolvable.append((index, virtualAddress))
      }
      let resolved = Self.resolve(
        resolvable.map(\.virtualAddress), in: file, statistics: &state.statistics)
      for (slot, entry) in zip(resolvable, resolved) {
        results[slot.index].frames = entry.frames
        results[slot.index].unknownReason = entry.reason
      }
      return results
    }
  }

  /// Kernel addresses through /proc/kallsyms: function names; for module symbols the mapping's path is the
  /// module's name.
  public func symbolizeKernel(addresses: [UInt64]) -> [ResolvedLocation] {
    state.withLock { state -> [ResolvedLocation] in
      if state.kernel == nil {
        state.kernel = Result { () throws(KernelSymbols.LoadError) in try KernelSymbols.load() }
      }
      switch state.kernel! {
      case .failure(let error):
        state.statistics.addressesUnknown += addresses.count
        return addresses.map {
          ResolvedLocation(
            address: $0, mapping: .kernel, frames: [], unknownReason: error.description)
        }
      case .success(let table):
        return addresses.map { address in
          let location = table.resolve(address)
          if location.frames.isEmpty {
            state.statistics.addressesUnknown += 1
          } else {
            state.statistics.addressesResolved += 1
          }
          return location
        }
      }
    }
  }

  private static func objectFile(
    path: String, identity: FileIdentity, state: inout State, configuration: DwflConfiguration
  ) throws(SymbolizerError) -> ObjectFile {
    if let cached = state.files.value(for: identity) {
      state.statistics.cacheHits += 1
      return try cached.get()
    }
    state.statistics.cacheMisses += 1
    state.statistics.filesParsed += 1
    let result = Result { () throws(SymbolizerError) in
      try ObjectFile(path: path, configuration: configuration)
    }
    state.statistics.evictions += state.files.insert(result, for: identity)
    return try result.get()
  }

  /// Resolves in address order, which keeps libdw's per-unit caches warm, and returns results in input order.
  private static func resolve(
    _ addresses: [UInt64], in file: ObjectFile, statistics: inout SymbolizerStatistics
  ) -> [(frames: [SourceFrame], reason: String?)] {
    var results = [(frames: [SourceFrame], reason: String?)](
      repeating: ([], nil), count: addresses.count)
    let order = addresses.indices.sorted { addresses[$0] < addresses[$1] }
    var previous: (address: UInt64, index: Int)? = nil
    for index in order {
      let address = addresses[index]
      if let previous, previous.address == address {
        results[index] = results[previous.index]
      } else {
        results[index] = file.resolve(virtualAddress: address)
      }
      previous = (address, index)
      if results[index].frames.isEmpty {
        statistics.addressesUnknown += 1
      } else {
        statistics.addressesResolved += 1
      }
    }
    return results
  }
}
