import FlamespanELF
import FlamespanModel
import FlamespanTestSupport
import Foundation
import Testing

@testable import FlamespanRuntimes

/// The parts of the CPython plug-in that need no Python process: versions, location tables, symbols.
@Suite struct CPythonFormatTests {
  @Test func decodesPyVersion() {
    #expect(CPythonVersion(hex: 0x030B_02F0).description == "3.11.2")
    #expect(CPythonVersion(hex: 0x030D_00F0).description == "3.13.0")
    #expect(CPythonVersion(hex: 0x030C_00A3).description == "3.12.0a3")
    #expect(CPythonVersion(hex: 0x030B_02F0).hex == 0x030B_02F0)
    #expect(!CPythonVersion(hex: 0).isPlausible)
    #expect(CPythonBinary.minorVersion(inFileName: "/usr/lib/libpython3.10.so.1.0") == "3.10")
    #expect(CPythonBinary.minorVersion(inFileName: "/opt/bin/python3.12") == "3.12")
    #expect(CPythonBinary.minorVersion(inFileName: "/usr/bin/python3") == nil)
  }

  /// Entries of every kind, written by hand from Objects/locations.md.
  @Test func decodesEachKindOfLocationEntry() throws {
    let table = try CPythonLineTable(
      bytes: [
        0x80 | 0 << 3 | 1, 0x05,  // short form, 2 units, same line (10)
        0x80 | 11 << 3 | 0, 4, 9,  // one line form, 1 unit, line + 1 (11)
        0x80 | 13 << 3 | 2, 0x07,  // no columns, 3 units, line - 3 (8)
        0x80 | 14 << 3 | 0, 0x40 | 0x08, 0x01, 0x00, 0x01, 0x02,  // long form: +(72 >> 1) = 44
        0x80 | 15 << 3 | 1,  // no location, 2 units
        0x80 | 10 << 3 | 0, 1, 2,  // one line form, line + 0: stays 44
      ], firstLine: 10)
    let lines = (0..<table.unitCount).map { table.line(atUnit: $0) }
    #expect(lines == [10, 10, 11, 8, 8, 8, 44, .some(nil), .some(nil), 44])
    #expect(table.line(atUnit: 10) == nil)
    #expect(table.line(atUnit: -1) == nil)
  }

  @Test func refusesMalformedLocationTables() {
    // A column byte where an entry should start, an entry cut short, a number that does not end.
    for bytes: [UInt8] in [[0x05], [0x80 | 11 << 3, 4], [0x80 | 13 << 3, 0x41], [0x80 | 14 << 3]] {
      #expect(throws: CPythonProblem.self) {
        _ = try CPythonLineTable(bytes: bytes, firstLine: 1)
      }
    }
  }

  @Test func decodesPthreadGetspecific() {
    // glibc 2.36's (Debian 12) first instructions, from objdump -d.
    let glibc236: [UInt8] = [
      0x83, 0xff, 0x1f, 0x77, 0x3b, 0x89, 0xf8, 0x48, 0x83, 0xc0, 0x31, 0x48, 0xc1, 0xe0, 0x04,
      0x64, 0x48, 0x03, 0x04, 0x25, 0x10, 0x00, 0x00, 0x00, 0x48, 0x8b, 0x50, 0x08, 0x48, 0x85,
    ]
    #expect(
      ThreadSpecificDataLayout.decode(pthreadGetspecific: glibc236)
        == ThreadSpecificDataLayout(dataOffset: 0x318, stride: 16, keyLimit: 32))
    // Another layout in the same code shape.
    var other = glibc236
    other[2] = 0x3f
    other[10] = 0x20
    other[27] = 0x10
    #expect(
      ThreadSpecificDataLayout.decode(pthreadGetspecific: other)
        == ThreadSpecificDataLayout(dataOffset: 0x210, stride: 16, keyLimit: 64))
    // The load not through %rax, or the fs-relative add missing: not this code.
    var load = glibc236
    load[26] = 0x51
    #expect(ThreadSpecificDataLayout.decode(pthreadGetspecific: load) == nil)
    #expect(ThreadSpecificDataLayout.decode(pthreadGetspecific: Array(glibc236.prefix(20))) == nil)
  }

  @Test(.requires(.file("/usr/bin/python3.11")))
  func findsTheInterpretersSymbolsThroughTheGNUHashTable() throws {
    let file = try #require(FileBytes(path: "/usr/bin/python3.11"))
    guard
      case .python(let binary) = CPythonBinary.load(path: "/usr/bin/python3.11", read: file.read)
    else {
      Issue.record("/usr/bin/python3.11 was not recognised")
      return
    }
    #expect(binary.version?.description == "3.11.2")
    // `readelf --dyn-syms` of Debian's 3.11.2-6+deb12u6 gives these; the sizes are the file's own.
    #expect(binary.symbols.runtime.size == 0x28b20)
    #expect(binary.symbols.codeType?.size == 408)
    #expect(binary.symbols.evalFrame?.size == 55644)
    let elf = try ELFFile(read: file.read)
    let lookup = DynamicSymbolLookup(elf: elf, read: file.read)
    #expect(lookup.lookup("_PyRuntime") == binary.symbols.runtime)
    #expect(lookup.lookup("no_such_symbol_anywhere") == nil)
    // An undefined reference (libc's) is no definition.
    #expect(lookup.lookup("pthread_getspecific") == nil)
  }

  @Test(.requires(.file("/usr/bin/python3.11")))
  func anUnsupportedVersionKeepsNativeFramesWithAOneLineNote() throws {
    let file = try #require(FileBytes(path: "/usr/bin/python3.11"))
    guard case .python(let real) = CPythonBinary.load(path: "/usr/bin/python3.11", read: file.read)
    else {
      Issue.record("/usr/bin/python3.11 was not recognised")
      return
    }
    // The same file as a build without Py_Version, which only versions before 3.11 are.
    let older = CPythonBinary(
      path: "/opt/python3.10/lib/libpython3.10.so.1.0", elf: real.elf, symbols: real.symbols,
      version: nil, nameVersion: "3.10")
    let process = CPythonProcess(pid: getpid(), binary: older, loadBias: 0, codeCacheCapacity: 8)
    process.refresh()
    #expect(process.samplerLayout == nil)
    #expect(process.problems == "CPython 3.10: version not supported, native frames only")
    let frames = process.name(
      InterpreterStackRecord(
        threadState: 0,
        frames: [
          InterpreterFrameRecord(code: 1, instruction: 2, stamp: 3, owner: 0, isEntry: true)
        ],
        status: .complete))
    #expect(frames.map(\.isUnknown) == [true])
    #expect(process.unknownFrames == 1)
  }
}

/// Small shared objects built here with the system compiler: the interpreter's symbols with either hash
/// table style, and an extension module that only refers to them.
@Suite(.requires(.tool("cc"))) struct CPythonDetectionTests {
  static let interpreterSource = """
    unsigned char _PyRuntime[4096];
    const unsigned long Py_Version = 0x030B02F0;
    unsigned char PyCode_Type[408];
    void _PyEval_EvalFrameDefault(void) {}
    """
  static let extensionSource = """
    extern unsigned char _PyRuntime[];
    unsigned char *runtime_of_extension(void) { return _PyRuntime; }
    """

  func build(_ source: String, _ name: String, _ flags: [String], in directory: TemporaryDirectory)
    throws -> String
  {
    let sourcePath = directory.file("\(name).c")
    try Data(source.utf8).write(to: URL(fileURLWithPath: sourcePath))
    let output = directory.file("\(name).so")
    try Run.checked(["cc", "-shared", "-fPIC", sourcePath, "-o", output] + flags)
    return output
  }

  @Test(arguments: ["sysv", "gnu", "both"]) func findsTheInterpreter(hashStyle: String) throws {
    let directory = try TemporaryDirectory("cpython-detect")
    let path = try build(
      Self.interpreterSource, "libpython3.11", ["-Wl,--hash-style=\(hashStyle)"], in: directory)
    let file = try #require(FileBytes(path: path))
    let elf = try ELFFile(read: file.read)
    #expect(
      (elf.section(named: ".gnu.hash") != nil) == (hashStyle != "sysv"),
      "the linker did not make the hash table asked for")
    guard case .python(let binary) = CPythonBinary.load(path: path, read: file.read) else {
      Issue.record("\(path) was not recognised")
      return
    }
    #expect(binary.version?.description == "3.11.2")
    #expect(binary.symbols.runtime.size == 4096)
    #expect(binary.symbols.codeType?.size == 408)
    #expect(binary.symbols.evalFrame != nil)
    #expect(binary.symbols.unicodeType == nil)
  }

  @Test(arguments: ["sysv", "gnu"]) func anExtensionModuleIsNotTheInterpreter(hashStyle: String)
    throws
  {
    let directory = try TemporaryDirectory("cpython-detect")
    let path = try build(
      Self.extensionSource, "extension", ["-Wl,--hash-style=\(hashStyle)"], in: directory)
    let file = try #require(FileBytes(path: path))
    guard case .notPython = CPythonBinary.load(path: path, read: file.read) else {
      Issue.record("an undefined reference to _PyRuntime was taken for the interpreter")
      return
    }
  }
}
