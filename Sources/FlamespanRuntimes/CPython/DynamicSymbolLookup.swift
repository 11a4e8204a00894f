import FlamespanELF

/// Finds a few named symbols in an ELF file's `.dynsym` without reading the whole table: through the
/// `.gnu.hash` table when the file has one (a bloom filter answers "not here" in one 8-byte read, which
/// is what keeps detection cheap for the many libraries that are not Python), else by one scan.
struct DynamicSymbolLookup {
  struct Symbol: Hashable, Sendable {
    /// Link-time address.
    var value: UInt64
    var size: UInt64
  }

  let elf: ELFFile
  let read: (UInt64, Int) -> [UInt8]?
  private let symbols: ELFFile.Section?
  private let strings: ELFFile.Section?
  private let hash: ELFFile.Section?

  /// An Elf64_Sym.
  static let entrySize = 24
  /// A table larger than this is corrupt (the largest real ones hold a few hundred thousand symbols).
  static let maximumTableBytes: UInt64 = 64 << 20

  init(elf: ELFFile, read: @escaping (UInt64, Int) -> [UInt8]?) {
    self.elf = elf
    self.read = read
    symbols = elf.sections.first { $0.type == 11 && $0.name == ".dynsym" }  // SHT_DYNSYM
    strings = symbols.flatMap { _ in elf.section(named: ".dynstr") }
    hash = elf.sections.first { $0.type == 0x6fff_fff6 }  // SHT_GNU_HASH
  }

  /// Whether the file has a dynamic symbol table at all.
  var hasSymbols: Bool { symbols != nil && strings != nil }

  /// The defined symbol `name` (an undefined one, such as an extension module's reference to
  /// `_PyRuntime`, does not count), or nil.
  func lookup(_ name: String) -> Symbol? {
    guard let symbols, let strings, symbols.hasFileBytes, strings.hasFileBytes else { return nil }
    if let hash, hash.hasFileBytes, !hash.isCompressed {
      return lookupThroughHash(name, hash: hash, symbols: symbols, strings: strings)
    }
    return scan(name, symbols: symbols, strings: strings)
  }

  /// The GNU hash of a symbol name (dl_new_hash).
  static func gnuHash(_ name: String) -> UInt32 {
    var value: UInt32 = 5381
    for byte in name.utf8 { value = value &* 33 &+ UInt32(byte) }
    return value
  }

  private func lookupThroughHash(
    _ name: String, hash: ELFFile.Section, symbols: ELFFile.Section, strings: ELFFile.Section
  ) -> Symbol? {
    guard let header = read(hash.fileOffset, 16), header.count == 16 else { return nil }
    let bucketCount = UInt64(u32(header, 0))
    let firstHashed = UInt64(u32(header, 4))
    let bloomWords = UInt64(u32(header, 8))
    let bloomShift = UInt32(u32(header, 12))
    guard bucketCount > 0, bloomWords > 0, bloomShift < 64,
      16 + bloomWords * 8 + bucketCount * 4 <= hash.size
    else { return nil }
    let value = Self.gnuHash(name)
    let bloomIndex = UInt64(value / 64) % bloomWords
    guard let bloomBytes = read(hash.fileOffset + 16 + bloomIndex * 8, 8), bloomBytes.count == 8
    else { return nil }
    let bloom = u64(bloomBytes, 0)
    let bits = (UInt64(1) << UInt64(value % 64)) | (UInt64(1) << UInt64((value >> bloomShift) % 64))
    guard bloom & bits == bits else { return nil }
    let bucketsStart = hash.fileOffset + 16 + bloomWords * 8
    guard let bucketBytes = read(bucketsStart + UInt64(value) % bucketCount * 4, 4),
      bucketBytes.count == 4
    else { return nil }
    var index = UInt64(u32(bucketBytes, 0))
    guard index >= firstHashed else { return nil }
    let chainStart = bucketsStart + bucketCount * 4
    let symbolCount = symbols.size / UInt64(Self.entrySize)
    while index < symbolCount {
      let chainOffset = chainStart + (index - firstHashed) * 4
      guard chainOffset + 4 <= hash.fileOffset + hash.size,
        let chainBytes = read(chainOffset, 4), chainBytes.count == 4
      else { return nil }
      let chain = u32(chainBytes, 0)
      if chain | 1 == value | 1, let symbol = symbol(at: index, named: name, symbols, strings) {
        return symbol
      }
      if chain & 1 != 0 { return nil }
      index += 1
    }
    return nil
  }

  private func scan(_ name: String, symbols: ELFFile.Section, strings: ELFFile.Section) -> Symbol? {
    guard symbols.size <= Self.maximumTableBytes,
      let table = read(symbols.fileOffset, Int(symbols.size))
    else { return nil }
    let count = table.count / Self.entrySize
    let wanted = Array(name.utf8)
    for index in 0..<count {
      let base = index * Self.entrySize
      guard u16(table, base + 6) != 0,
        let candidate = string(at: UInt64(u32(table, base)), count: wanted.count + 1, strings),
        candidate == wanted + [0]
      else { continue }
      return Symbol(value: u64(table, base + 8), size: u64(table, base + 16))
    }
    return nil
  }

  /// Symbol `index` when it is called `name` and is defined.
  private func symbol(
    at index: UInt64, named name: String, _ symbols: ELFFile.Section, _ strings: ELFFile.Section
  ) -> Symbol? {
    guard let entry = read(symbols.fileOffset + index * UInt64(Self.entrySize), Self.entrySize),
      entry.count == Self.entrySize
    else { return nil }
    let wanted = Array(name.utf8)
    guard u16(entry, 6) != 0,  // st_shndx: SHN_UNDEF is a reference, not a definition
      let candidate = string(at: UInt64(u32(entry, 0)), count: wanted.count + 1, strings),
      candidate == wanted + [0]
    else { return nil }
    return Symbol(value: u64(entry, 8), size: u64(entry, 16))
  }

  /// `count` bytes of the string table at `offset`, or nil when they are not all inside it.
  private func string(at offset: UInt64, count: Int, _ strings: ELFFile.Section) -> [UInt8]? {
    guard offset < strings.size, UInt64(count) <= strings.size - offset else { return nil }
    return read(strings.fileOffset + offset, count)
  }

  private func u16(_ bytes: [UInt8], _ offset: Int) -> UInt16 {
    UInt16(truncatingIfNeeded: littleEndian(bytes, offset, 2))
  }
  private func u32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
    UInt32(truncatingIfNeeded: littleEndian(bytes, offset, 4))
  }
  private func u64(_ bytes: [UInt8], _ offset: Int) -> UInt64 { littleEndian(bytes, offset, 8) }
}

/// The little-endian value of `width` bytes at `offset`, or 0 when they are not all there.
func littleEndian(_ bytes: [UInt8], _ offset: Int, _ width: Int) -> UInt64 {
  guard offset >= 0, width <= 8, offset <= bytes.count - width else { return 0 }
  var value: UInt64 = 0
  for index in (0..<width).reversed() { value = value << 8 | UInt64(bytes[offset + index]) }
  return value
}
