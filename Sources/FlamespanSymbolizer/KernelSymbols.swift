import FlamespanModel

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// The kernel's text symbols from /proc/kallsyms, sorted for binary search. kallsyms has no sizes, so a
/// symbol covers addresses up to the next one. All names live in one byte buffer: a kernel has over 100 000
/// text symbols, and a Swift string each (most are longer than the 15 bytes stored inline) cost the
/// always-on agent about 8 MiB instead of 5.
struct KernelSymbols {
  struct LoadError: Error, CustomStringConvertible {
    var path: String
    var errno: Int32
    var message: String
    var description: String {
      errno == 0 ? "\(path): \(message)" : "\(path): \(message) (errno \(errno))"
    }
  }

  private struct Entry {
    var address: UInt64
    /// The name is `names[nameStart..<nameStart + nameLength]`.
    var nameStart: UInt32
    var nameLength: UInt16
    /// Index into `modules`, -1 for the core kernel image.
    var module: Int16
  }

  private var entries: [Entry]
  private var names: [UInt8]
  private var modules: [String]
  /// Beyond the last symbol nothing is known about the extent of the text.
  private static let lastSymbolReach: UInt64 = 1 << 20

  static func load(path: String = "/proc/kallsyms") throws(LoadError) -> KernelSymbols {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { throw LoadError(path: path, errno: errno, message: "cannot open") }
    defer { close(descriptor) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
      let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
      if count < 0 {
        if errno == EINTR { continue }
        throw LoadError(path: path, errno: errno, message: "read failed")
      }
      if count == 0 { break }
      bytes.append(contentsOf: chunk[0..<count])
    }
    let table = KernelSymbols(parsing: bytes)
    guard !table.entries.isEmpty else {
      throw LoadError(
        path: path, errno: 0, message: "no text symbols with addresses (kptr_restrict hides them?)")
    }
    return table
  }

  /// Parses `ADDRESS TYPE NAME [MODULE]` lines; malformed lines are skipped.
  init(parsing bytes: [UInt8]) {
    var entries: [Entry] = []
    var names: [UInt8] = []
    var modules: [String] = []
    var moduleIndex: [String: Int16] = [:]
    for line in bytes.split(separator: UInt8(ascii: "\n")) {
      let fields = line.split(whereSeparator: {
        $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t")
      })
      guard fields.count >= 3, fields[1].count == 1,
        let address = UInt64(String(decoding: fields[0], as: UTF8.self), radix: 16), address != 0
      else { continue }
      switch fields[1].first! {
      case UInt8(ascii: "t"), UInt8(ascii: "T"), UInt8(ascii: "w"), UInt8(ascii: "W"): break
      default: continue
      }
      var module: Int16 = -1
      // Past these bounds (no real kernel comes near them) the symbol is left out rather than misnamed.
      guard fields[2].count <= Int(UInt16.max), names.count + fields[2].count <= Int(UInt32.max)
      else { continue }
      if fields.count >= 4 {
        var name = String(decoding: fields[3], as: UTF8.self)
        if name.hasPrefix("[") && name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
        if let known = moduleIndex[name] {
          module = known
        } else if modules.count < Int(Int16.max) {
          module = Int16(modules.count)
          moduleIndex[name] = module
          modules.append(name)
        }
      }
      entries.append(
        Entry(
          address: address, nameStart: UInt32(names.count), nameLength: UInt16(fields[2].count),
          module: module))
      names.append(contentsOf: fields[2])
    }
    entries.sort { $0.address < $1.address }
    self.entries = entries
    self.names = names
    self.modules = modules
  }

  func resolve(_ address: UInt64) -> ResolvedLocation {
    var low = 0
    var high = entries.count
    while low < high {
      let middle = (low + high) / 2
      if entries[middle].address <= address { low = middle + 1 } else { high = middle }
    }
    guard low > 0 else {
      return ResolvedLocation(
        address: address, mapping: .kernel, frames: [],
        unknownReason: "below the first kernel symbol")
    }
    let entry = entries[low - 1]
    if low == entries.count && address - entry.address >= Self.lastSymbolReach {
      return ResolvedLocation(
        address: address, mapping: .kernel, frames: [],
        unknownReason: "beyond the last kernel symbol")
    }
    var mapping = Mapping.kernel
    if entry.module >= 0 { mapping.path = modules[Int(entry.module)] }
    let start = Int(entry.nameStart)
    let name = String(decoding: names[start..<(start + Int(entry.nameLength))], as: UTF8.self)
    return ResolvedLocation(
      address: address, mapping: mapping, frames: [SourceFrame(function: name)])
  }
}
