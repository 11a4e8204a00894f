import FlamespanModel
import FlamespanProcess
import FlamespanRuntimes
import FlamespanSymbolizer
import Glibc

/// Turns aggregated raw stacks into symbolized profile samples, batching every address by the file it
/// belongs to so each file is opened and searched once.
struct StackResolver {
  let tracker: ProcessTracker
  let symbolizer: Symbolizer
  /// Runtime plug-ins name the code they own (Go, JIT perf maps); nil names native code only.
  var runtimes: RuntimeRegistry? = nil

  /// What a runtime said of one address of one process.
  private struct RuntimeKey: Hashable {
    var pid: Int32
    var lookupAddress: UInt64
  }
  private struct RuntimeNaming {
    var owner: String
    var symbol: RuntimeSymbol?
  }

  /// A user address placed in its mapping. Return addresses (every frame but the leaf) are looked up one byte
  /// back, so the line shown is the call, not the instruction after it.
  private struct Placement: Hashable {
    var mapping: Mapping
    var lookupAddress: UInt64
  }

  func resolve(_ aggregator: SampleAggregator) -> [ProfileSample] {
    let tallies = aggregator.tallies
    var batches: [Mapping: Set<UInt64>] = [:]
    var kernelAddresses: Set<UInt64> = []
    var placements: [SampleAggregator.Key: [Placement?]] = [:]
    // nil values too: most addresses are native, and asking the runtimes again for each stack that
    // passes through one would repeat the same lookups.
    var runtimeNamed: [RuntimeKey: RuntimeNaming?] = [:]
    let now = ProcessInspector.monotonicNanos()

    for (key, tally) in tallies {
      for (index, address) in key.kernelStack.enumerated() {
        kernelAddresses.insert(index == 0 ? address : address - 1)
      }
      var placed: [Placement?] = []
      let time = aggregator.resolutionTime(for: key, tally: tally)
      let maps = runtimes == nil ? nil : tracker.maps(pid: key.pid, at: time)
      for (index, address) in key.userStack.enumerated() {
        let lookup = index == 0 || address == 0 ? address : address - 1
        let mapping = tracker.mapping(pid: key.pid, address: address, at: time)
        let runtimeKey = RuntimeKey(pid: key.pid, lookupAddress: lookup)
        if let runtimes, let maps, runtimeNamed.index(forKey: runtimeKey) == nil {
          let named = runtimes.symbolize(address: lookup, mapping: mapping, maps: maps, now: now)
          runtimeNamed[runtimeKey] = .some(
            named.map { RuntimeNaming(owner: $0.owner, symbol: $0.symbol) })
        }
        guard let mapping else {
          placed.append(nil)
          continue
        }
        placed.append(Placement(mapping: mapping, lookupAddress: lookup))
        if mapping.kind == .file { batches[mapping, default: []].insert(lookup) }
      }
      placements[key] = placed
    }

    var userResolved: [Placement: ResolvedLocation] = [:]
    for (mapping, addresses) in batches {
      let sorted = addresses.sorted()
      for (address, location) in zip(
        sorted, symbolizer.symbolize(mapping: mapping, addresses: sorted))
      {
        userResolved[Placement(mapping: mapping, lookupAddress: address)] = location
      }
    }
    let kernelSorted = kernelAddresses.sorted()
    var kernelResolved: [UInt64: ResolvedLocation] = [:]
    for (address, location) in zip(
      kernelSorted, symbolizer.symbolizeKernel(addresses: kernelSorted))
    {
      kernelResolved[address] = location
    }

    var merged: [ProfileSample: Int64] = [:]
    for (key, tally) in tallies {
      var stack: [ResolvedLocation] = []
      for (index, address) in key.kernelStack.enumerated() {
        var location =
          kernelResolved[index == 0 ? address : address - 1]
          ?? ResolvedLocation(
            address: address, mapping: .kernel, frames: [], unknownReason: "not in kallsyms")
        location.address = address
        stack.append(location)
      }
      let placed = placements[key] ?? []
      var user: [ResolvedLocation] = []
      user.reserveCapacity(key.userStack.count)
      for (index, (address, placement)) in zip(key.userStack, placed).enumerated() {
        var location = userLocation(
          address: address, placement: placement, key: key, resolved: userResolved)
        let lookup = index == 0 || address == 0 ? address : address - 1
        if let naming = runtimeNamed[RuntimeKey(pid: key.pid, lookupAddress: lookup)] ?? nil {
          Self.apply(naming, to: &location)
        }
        user.append(location)
      }
      stack += key.interpreterSplice?.merged(into: user) ?? user
      if let marker = key.userStackMarker { stack.append(Self.marker(marker)) }
      if let errno = key.userStackErrno, key.userStack.isEmpty {
        stack.append(Self.marker(Self.lostStackText(errno: errno)))
      }
      if stack.isEmpty { stack.append(Self.marker("[no stack]")) }
      let sample = ProfileSample(
        stack: stack, pid: key.pid, tid: key.tid, threadName: key.threadName, span: key.span,
        count: 0)
      merged[sample, default: 0] += tally.count
    }
    return merged.map { sample, count in
      var sample = sample
      sample.count = count
      return sample
    }
  }

  private func userLocation(
    address: UInt64, placement: Placement?, key: SampleAggregator.Key,
    resolved: [Placement: ResolvedLocation]
  ) -> ResolvedLocation {
    guard let placement else {
      let reason =
        tracker.hasSnapshot(pid: key.pid)
        ? "address is in no executable mapping"
        : "process exited before its mappings could be read"
      return ResolvedLocation(address: address, mapping: nil, frames: [], unknownReason: reason)
    }
    if var location = resolved[placement] {
      location.address = address
      location.mapping = placement.mapping
      return location
    }
    let reason: String
    switch placement.mapping.kind {
    case .deletedFile: reason = "file was deleted after it was mapped"
    case .vdso: reason = "vDSO"
    case .anonymous: reason = "anonymous executable memory (JIT or generated code)"
    case .special: reason = "special mapping \(placement.mapping.path)"
    case .kernel, .file: reason = "not symbolized"
    }
    return ResolvedLocation(
      address: address, mapping: placement.mapping, frames: [], unknownReason: reason)
  }

  /// A runtime's names win over an ELF symbol table's (a JIT region has none; a stripped Go binary has
  /// no symbols), but native DWARF keeps its inline chains where it found any: the runtime then only
  /// says what kind of frame it is.
  private static func apply(_ naming: RuntimeNaming, to location: inout ResolvedLocation) {
    guard let symbol = naming.symbol else {
      if location.frames.isEmpty {
        location.unknownReason = "\(naming.owner): code it owns but cannot name"
      }
      return
    }
    location.frameType = symbol.frameType
    location.isJIT = symbol.isJIT
    if location.frames.count <= 1 || symbol.frames.count > 1 || symbol.isJIT {
      location.frames = symbol.frames
      location.unknownReason = nil
    }
  }

  static func lostStackText(errno: Int32) -> String {
    switch errno {
    case EEXIST: return "[user stack lost: stack map hash collision]"
    case ENOMEM: return "[user stack lost: stack map full]"
    default: return "[user stack unreadable: \(String(cString: strerror(errno)))]"
    }
  }

  /// A synthetic frame that says what is missing; bracketed so no one takes it for a function.
  static func marker(_ text: String) -> ResolvedLocation {
    ResolvedLocation(
      address: 0, mapping: nil, frames: [SourceFrame(function: text)], unknownReason: text)
  }
}
