import FlamespanProcess

/// What naming a frame needs of one code object, read once from the process and checked field by field:
/// a pointer to something that is not a code object, a string or bytes object of the wrong type or size,
/// or a line table that does not cover the bytecode is a failed read, never a name.
struct CPythonCodeObject: Sendable {
  var qualifiedName: String
  var fileName: String
  var firstLine: Int
  /// Bytecode length in code units (2 bytes each), inline caches included.
  var unitCount: Int
  /// The index of the first instruction a frame of this code is complete at (its RESUME).
  var firstTraceable: Int
  var lineTable: CPythonLineTable
  /// The four bytes at `CPythonOffsets.codeStamp` when the object was read.
  var stamp: UInt32

  /// The runtime addresses of the type objects a read checks objects against; nil skips the check.
  struct TypeAddresses: Sendable {
    var code: UInt64
    var unicode: UInt64?
    var bytes: UInt64?
  }

  /// Longest name or file name read, in characters.
  static let maximumStringLength = 4096
  /// Longest bytecode and line table accepted: far beyond any real function.
  static let maximumUnits = 1 << 22
  static let maximumLineTableBytes = 1 << 22

  static func read(
    at address: UInt64, memory: ProcessMemory, offsets: CPythonOffsets, types: TypeAddresses
  ) throws(CPythonProblem) -> CPythonCodeObject {
    let header = try readOrFail(memory, address, Int(offsets.codeBytecode), "code object")
    func word(_ offset: UInt64, _ width: Int = 8) -> UInt64 {
      littleEndian(header, Int(offset), width)
    }
    guard word(offsets.objectType) == types.code else {
      throw CPythonProblem("0x\(String(address, radix: 16)) is not a code object")
    }
    let units = Int(truncatingIfNeeded: Int64(bitPattern: word(offsets.varObjectSize)))
    let firstTraceable = Int(Int32(truncatingIfNeeded: word(offsets.codeFirstTraceable, 4)))
    let firstLine = Int(Int32(truncatingIfNeeded: word(offsets.codeFirstLine, 4)))
    guard units > 0, units <= maximumUnits, firstTraceable >= 0, firstTraceable < units else {
      throw CPythonProblem("code object at 0x\(String(address, radix: 16)) has inconsistent sizes")
    }
    let qualifiedName = try readString(
      at: word(offsets.codeQualifiedName), memory: memory, offsets: offsets, types: types)
    let fileName = try readString(
      at: word(offsets.codeFileName), memory: memory, offsets: offsets, types: types)
    let tableBytes = try readBytes(
      at: word(offsets.codeLineTable), memory: memory, offsets: offsets, types: types)
    let lineTable = try CPythonLineTable(bytes: tableBytes, firstLine: firstLine)
    guard lineTable.unitCount == units else {
      throw CPythonProblem(
        "the location table covers \(lineTable.unitCount) code units, the bytecode has \(units)")
    }
    return CPythonCodeObject(
      qualifiedName: qualifiedName, fileName: fileName, firstLine: firstLine, unitCount: units,
      firstTraceable: firstTraceable, lineTable: lineTable,
      stamp: UInt32(truncatingIfNeeded: word(UInt64(offsets.codeStamp), 4)))
  }

  /// A `str` object: compact (its characters follow the object), ASCII or UCS1/2/4.
  static func readString(
    at address: UInt64, memory: ProcessMemory, offsets: CPythonOffsets, types: TypeAddresses
  ) throws(CPythonProblem) -> String {
    let header = try readOrFail(memory, address, Int(offsets.compactUnicodeObjectSize), "str")
    if let unicode = types.unicode, littleEndian(header, Int(offsets.objectType), 8) != unicode {
      throw CPythonProblem("0x\(String(address, radix: 16)) is not a str")
    }
    let state = UInt32(truncatingIfNeeded: littleEndian(header, Int(offsets.unicodeState), 4))
    let kind = Int(state >> 2 & 7)
    let isCompact = state >> 5 & 1 == 1
    let isASCII = state >> 6 & 1 == 1
    let length = Int(
      truncatingIfNeeded: Int64(bitPattern: littleEndian(header, Int(offsets.unicodeLength), 8)))
    guard isCompact, [1, 2, 4].contains(kind), !isASCII || kind == 1, length >= 0,
      length <= maximumStringLength
    else { throw CPythonProblem("str at 0x\(String(address, radix: 16)) has an unexpected layout") }
    if length == 0 { return "" }
    let dataStart =
      address &+ (isASCII ? offsets.asciiObjectSize : offsets.compactUnicodeObjectSize)
    let data = try readOrFail(memory, dataStart, length * kind, "str data")
    var scalars = String.UnicodeScalarView()
    for index in 0..<length {
      let code = UInt32(truncatingIfNeeded: littleEndian(data, index * kind, kind))
      if isASCII, code > 0x7f {
        throw CPythonProblem("ASCII str at 0x\(String(address, radix: 16)) is not ASCII")
      }
      // A lone surrogate is a valid Python str but no Unicode scalar.
      scalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
    }
    return String(scalars)
  }

  /// A `bytes` object's contents.
  static func readBytes(
    at address: UInt64, memory: ProcessMemory, offsets: CPythonOffsets, types: TypeAddresses
  ) throws(CPythonProblem) -> [UInt8] {
    let header = try readOrFail(memory, address, Int(offsets.bytesData), "bytes")
    if let bytes = types.bytes, littleEndian(header, Int(offsets.objectType), 8) != bytes {
      throw CPythonProblem("0x\(String(address, radix: 16)) is not a bytes object")
    }
    let size = Int(
      truncatingIfNeeded: Int64(bitPattern: littleEndian(header, Int(offsets.varObjectSize), 8)))
    guard size >= 0, size <= maximumLineTableBytes else {
      throw CPythonProblem("bytes at 0x\(String(address, radix: 16)) has size \(size)")
    }
    return try readOrFail(memory, address &+ offsets.bytesData, size, "bytes data")
  }

  private static func readOrFail(
    _ memory: ProcessMemory, _ address: UInt64, _ count: Int, _ what: String
  ) throws(CPythonProblem) -> [UInt8] {
    do {
      return try memory.read(address, count: count)
    } catch {
      throw CPythonProblem("reading a \(what): \(error)")
    }
  }
}
