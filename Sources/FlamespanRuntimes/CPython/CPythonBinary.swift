import FlamespanELF

/// One file holding a CPython interpreter: libpython3.X.so, or a python binary linked statically that
/// exports its symbols (Debian's /usr/bin/python3.11). What is learnt from the file alone is shared by
/// every process that maps it.
final class CPythonBinary: Sendable {
  struct Symbols: Sendable {
    var runtime: DynamicSymbolLookup.Symbol
    var codeType: DynamicSymbolLookup.Symbol?
    var unicodeType: DynamicSymbolLookup.Symbol?
    var bytesType: DynamicSymbolLookup.Symbol?
    var evalFrame: DynamicSymbolLookup.Symbol?
  }

  let path: String
  let elf: ELFFile
  let symbols: Symbols
  /// From `Py_Version`; nil for versions before 3.11, which do not have it.
  let version: CPythonVersion?
  /// The minor version from the file name (libpython3.10.so, python3.10), for versions without
  /// `Py_Version`.
  let nameVersion: String?

  init(
    path: String, elf: ELFFile, symbols: Symbols, version: CPythonVersion?, nameVersion: String?
  ) {
    self.path = path
    self.elf = elf
    self.symbols = symbols
    self.version = version
    self.nameVersion = nameVersion
  }

  /// What a file turned out to be.
  enum Loaded: Sendable {
    case python(CPythonBinary)
    case notPython
  }

  /// Whether `read` is a CPython interpreter: it defines `_PyRuntime` in its dynamic symbols.
  static func load(path: String, read: @escaping (UInt64, Int) -> [UInt8]?) -> Loaded {
    guard let elf = try? ELFFile(read: read) else { return .notPython }
    let lookup = DynamicSymbolLookup(elf: elf, read: read)
    guard lookup.hasSymbols, let runtime = lookup.lookup("_PyRuntime") else { return .notPython }
    let symbols = Symbols(
      runtime: runtime, codeType: lookup.lookup("PyCode_Type"),
      unicodeType: lookup.lookup("PyUnicode_Type"), bytesType: lookup.lookup("PyBytes_Type"),
      evalFrame: lookup.lookup("_PyEval_EvalFrameDefault"))
    var version: CPythonVersion?
    if let symbol = lookup.lookup("Py_Version"), symbol.size == 4 || symbol.size == 8,
      let offset = fileOffset(of: symbol.value, in: elf), let bytes = read(offset, 4),
      bytes.count == 4
    {
      let decoded = CPythonVersion(hex: UInt32(truncatingIfNeeded: littleEndian(bytes, 0, 4)))
      if decoded.isPlausible { version = decoded }
    }
    return .python(
      CPythonBinary(
        path: path, elf: elf, symbols: symbols, version: version,
        nameVersion: minorVersion(inFileName: path)))
  }

  /// Opens and reads `path`; `identity`, when given, must match the file's (device, inode). Nil when the
  /// file cannot be opened or was replaced since it was mapped: it may be readable next time.
  static func load(path: String, identity: (device: UInt64, inode: UInt64)?) -> Loaded? {
    guard let file = FileBytes(regularFileAt: path) else { return nil }
    if let identity, identity.inode != 0, let actual = file.identity,
      actual.device != identity.device || actual.inode != identity.inode
    {
      return nil
    }
    return load(path: path, read: file.read)
  }

  /// The file offset of link-time address `address`, from the PT_LOAD segment holding it in the file.
  static func fileOffset(of address: UInt64, in elf: ELFFile) -> UInt64? {
    for segment in elf.segments
    where address >= segment.virtualAddress && address - segment.virtualAddress < segment.fileSize {
      return segment.fileOffset + (address - segment.virtualAddress)
    }
    return nil
  }

  /// "3.10" from ".../libpython3.10.so.1.0" or ".../python3.10".
  static func minorVersion(inFileName path: String) -> String? {
    let name = path.split(separator: "/").last.map(String.init) ?? path
    guard let range = name.range(of: "python") else { return nil }
    let digits = name[range.upperBound...].prefix { $0.isNumber || $0 == "." }
    let parts = digits.split(separator: ".", omittingEmptySubsequences: true)
    guard parts.count >= 2 else { return nil }
    return "\(parts[0]).\(parts[1])"
  }

  /// The interpreter for the summary: "CPython 3.11.2".
  var versionDescription: String {
    if let version { return "CPython \(version)" }
    if let nameVersion { return "CPython \(nameVersion)" }
    return "CPython (version unknown)"
  }
}
