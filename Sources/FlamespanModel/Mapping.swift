/// What backs a range of a process's address space. Only `.file` ranges can be symbolized; the others are
/// shown under their own name so that a profile never puts a wrong function name on them.
public enum MappingKind: Hashable, Sendable {
  /// A regular file that still exists at `path`.
  case file
  /// The file was deleted or replaced after it was mapped (`(deleted)` in /proc/PID/maps).
  case deletedFile
  /// The kernel's virtual shared object.
  case vdso
  /// Anonymous executable memory: JIT output, trampolines, or code copied at run time.
  case anonymous
  /// `[stack]`, `[heap]`, `[vsyscall]` and other special kernel-named regions.
  case special
  /// The kernel image and its modules.
  case kernel
}

/// One executable range of a process, as `/proc/PID/maps` describes it.
public struct Mapping: Hashable, Sendable {
  public var start: UInt64
  /// One past the last address.
  public var limit: UInt64
  public var fileOffset: UInt64
  /// The file path, or a bracketed name such as `[vdso]` or `[anon]` for non-file ranges.
  public var path: String
  public var buildID: BuildID?
  public var kind: MappingKind
  /// Device and inode of the file, so that the same file is parsed once even under other paths.
  public var device: UInt64
  public var inode: UInt64

  public init(
    start: UInt64, limit: UInt64, fileOffset: UInt64, path: String, buildID: BuildID? = nil,
    kind: MappingKind, device: UInt64 = 0, inode: UInt64 = 0
  ) {
    self.start = start
    self.limit = limit
    self.fileOffset = fileOffset
    self.path = path
    self.buildID = buildID
    self.kind = kind
    self.device = device
    self.inode = inode
  }

  public func contains(_ address: UInt64) -> Bool { address >= start && address < limit }

  /// The offset in the file that `address` was loaded from. Wrapping arithmetic: a corrupt or foreign
  /// profile can pair an address with a mapping that does not contain it, and that must not crash a reader.
  public func fileOffset(of address: UInt64) -> UInt64 { address &- start &+ fileOffset }

  public static let kernel = Mapping(
    start: 0, limit: .max, fileOffset: 0, path: "[kernel.kallsyms]", kind: .kernel)
}

extension Mapping {
  /// How /proc/PID/maps marks a file that was deleted or replaced after it was mapped; profiles keep it.
  public static let deletedMark = " (deleted)"

  /// The file name a profile writes for this mapping: the path, marked when the file was deleted.
  public var profileFileName: String { kind == .deletedFile ? path + Self.deletedMark : path }
}

extension MappingKind {
  /// The kind a mapping file name in a profile stands for, read back by the same rules the exporters and
  /// /proc/PID/maps write them, with the path stripped of its deleted mark.
  public static func classify(profileFileName name: String) -> (kind: MappingKind, path: String) {
    if name.hasPrefix("[kernel") { return (.kernel, name) }
    if name == "[vdso]" || name.hasPrefix("linux-vdso") { return (.vdso, name) }
    if name.isEmpty || name.hasPrefix("[anon") || name.hasPrefix("//anon") {
      return (.anonymous, name)
    }
    if name.hasPrefix("[") { return (.special, name) }
    if name.hasSuffix(Mapping.deletedMark) {
      return (.deletedFile, String(name.dropLast(Mapping.deletedMark.count)))
    }
    return (.file, name)
  }
}
