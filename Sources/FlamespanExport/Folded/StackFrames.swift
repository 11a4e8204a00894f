import FlamespanModel

/// One box of a flame graph or one element of a folded line: a function, an unresolved address, or the
/// thread the stack ran on.
struct FlameFrame: Hashable {
  enum Kind: Hashable {
    case thread
    case user
    case kernel
    /// Code a JIT generated, named from its perf map.
    case jit
    /// An address with no symbol, shown by where it lies (`[vdso]`, `libx.so+0x1234`).
    case unresolved
  }
  var name: String
  var kind: Kind
}

enum StackFrames {
  /// The sample's stack from the root down: the thread name first (like `perf script | stackcollapse`), then
  /// each location's inline chain expanded outer function first.
  static func rootFirst(_ sample: ProfileSample) -> [FlameFrame] {
    var frames: [FlameFrame] = []
    frames.reserveCapacity(sample.stack.count + 1)
    frames.append(FlameFrame(name: threadLabel(sample), kind: .thread))
    for location in sample.stack.reversed() {
      let isKernel = location.mapping?.kind == .kernel
      if location.frames.isEmpty {
        frames.append(
          FlameFrame(name: location.safeDisplayName, kind: isKernel ? .kernel : .unresolved))
        continue
      }
      if location.isJIT {
        // Marked in the name too, so folded text (which has no colours) tells JIT code apart.
        for frame in location.frames.reversed() {
          frames.append(FlameFrame(name: frame.function + " " + Self.jitMarker, kind: .jit))
        }
        continue
      }
      for frame in location.frames.reversed() {
        frames.append(FlameFrame(name: frame.function, kind: isKernel ? .kernel : .user))
      }
    }
    return frames
  }

  /// Appended to the names of JIT frames.
  static let jitMarker = "[jit]"

  static func threadLabel(_ sample: ProfileSample) -> String {
    sample.threadName.isEmpty ? "[tid \(sample.tid)]" : sample.threadName
  }
}

extension ResolvedLocation {
  /// `displayName`, made safe for inconsistent input: the model computes `address - start + fileOffset`
  /// with trapping arithmetic, so an address outside its file mapping (a corrupt pprof file, a racing
  /// mapping update) would crash the process. Such an address is named without a file offset instead.
  var safeDisplayName: String {
    if frames.isEmpty, let mapping, mapping.kind == .file || mapping.kind == .deletedFile {
      let (delta, below) = address.subtractingReportingOverflow(mapping.start)
      let (_, beyond) = delta.addingReportingOverflow(mapping.fileOffset)
      if below || beyond {
        let base = mapping.path.split(separator: "/").last.map(String.init) ?? mapping.path
        return "\(base) 0x\(String(address, radix: 16)) (outside mapping)"
      }
    }
    return displayName
  }
}
