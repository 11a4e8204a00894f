import FlamespanELF

/// One Go executable (or shared object) on disk: its ELF layout, to turn file offsets into link-time
/// addresses, and its parsed `.gopclntab`.
public final class GoBinary: Sendable {
  public let name: String
  public let elf: ELFFile
  public let table: GoPCLNTable
  /// `go:func.*`, where inline trees lie; nil when the module data could not be found, and then
  /// functions are named without their inlined calls.
  public let funcData: GoFuncData?
  /// Why `funcData` is nil, for summaries.
  public let funcDataProblem: String?

  /// The section names the linker gives the table: `.gopclntab`, or `.data.rel.ro.gopclntab` in PIE
  /// and other relocatable builds.
  static let sectionNames = [".gopclntab", ".data.rel.ro.gopclntab"]
  /// Larger than any real table (a 1 GB binary has a few hundred MB of text), so corrupt sizes are refused.
  static let maximumTableSize: UInt64 = 1 << 30

  public init(
    name: String, elf: ELFFile, table: GoPCLNTable, funcData: GoFuncData? = nil,
    funcDataProblem: String? = nil
  ) {
    self.name = name
    self.elf = elf
    self.table = table
    self.funcData = funcData
    self.funcDataProblem = funcDataProblem
  }

  /// What a file turned out to be.
  public enum Loaded: Sendable {
    case go(GoBinary)
    /// Not ELF, or no pclntab section: not a Go binary, nothing to report.
    case notGo
    /// A Go binary whose table could not be used, and why.
    case failed(String)
  }

  /// Reads the ELF headers through `read`, then the pclntab section when there is one.
  public static func load(name: String, read: (UInt64, Int) -> [UInt8]?) -> Loaded {
    guard let elf = try? ELFFile(read: read) else { return .notGo }
    guard let section = sectionNames.lazy.compactMap({ elf.section(named: $0) }).first,
      section.hasFileBytes, section.size >= 16
    else { return .notGo }
    guard !section.isCompressed, section.size <= maximumTableSize,
      let bytes = read(section.fileOffset, Int(section.size))
    else { return .failed("\(name): \(section.name) is unreadable") }
    do {
      let table = try GoPCLNTable(
        bytes: bytes, textSectionAddress: elf.section(named: ".text")?.address)
      // Inline trees are an extra: without them the binary is still unwound and named.
      do {
        let funcData = try GoFuncData.locate(
          elf: elf, table: table, tableAddress: section.address, read: read)
        return .go(GoBinary(name: name, elf: elf, table: table, funcData: funcData))
      } catch {
        return .go(
          GoBinary(name: name, elf: elf, table: table, funcDataProblem: "\(name): \(error)"))
      }
    } catch {
      return .failed("\(name): \(error)")
    }
  }

  /// Opens and reads `path`; `identity`, when given, must match the file's (device, inode).
  public static func load(path: String, identity: (device: UInt64, inode: UInt64)? = nil) -> Loaded
  {
    guard let file = FileBytes(path: path) else { return .failed("cannot open \(path)") }
    if let identity, identity.inode != 0, let actual = file.identity,
      actual.device != identity.device || actual.inode != identity.inode
    {
      return .failed("\(path) was replaced since it was mapped")
    }
    return load(name: path, read: file.read)
  }
}
