import CLibDW
import FlamespanModel

/// Address → inline chain over one file's DWARF. Compile units are found through a range table built once;
/// each unit's tree of functions and inlined calls is built the first time an address falls in it, so later
/// lookups are binary searches rather than walks of the unit's DIEs.
final class DwarfIndex {
  private struct UnitRange {
    var start: UInt64
    var end: UInt64
    var unit: Int
  }

  private final class Unit {
    var die: Dwarf_Die
    var tree: ScopeTree?
    /// DW_AT_comp_dir, with a trailing slash, when present.
    let compilationDirectory: String?
    /// The unit's bytes in .debug_info, which building its tree reads in full.
    var byteLength = 0

    init(die: Dwarf_Die) {
      var die = die
      self.die = die
      var attribute = Dwarf_Attribute()
      if dwarf_attr(&die, UInt32(DW_AT_comp_dir), &attribute) != nil,
        let text = dwarf_formstring(&attribute),
        text.pointee != 0
      {
        let directory = String(cString: text)
        compilationDirectory = directory.hasSuffix("/") ? directory : directory + "/"
      } else {
        compilationDirectory = nil
      }
    }
  }

  private let dwarf: OpaquePointer
  /// Added to a module address to get a DWARF address (subtracted, in libdw's sign convention).
  private let bias: UInt64
  private var units: [Unit] = []
  private var unitRanges: [UnitRange] = []
  private var fileNames: [UnsafeRawPointer: String] = [:]
  private var functionNames: [UInt64: DemangledName] = [:]
  /// Kept up to date as units are built and names cached, for `estimatedBytes`.
  private var builtUnitBytes = 0
  private var nameBytes = 0

  init(dwarf: OpaquePointer, bias: UInt64) {
    self.dwarf = dwarf
    self.bias = bias
    indexUnits()
  }

  private func indexUnits() {
    var unit: OpaquePointer? = nil
    var next: OpaquePointer? = nil
    var version: Dwarf_Half = 0
    var unitType: UInt8 = 0
    var cuDie = Dwarf_Die()
    // Offsets of every unit's DIE in .debug_info, code-bearing or not: consecutive offsets give each
    // unit's length (the headers between them are the same size).
    var dieOffsets: [(offset: UInt64, unit: Int?)] = []
    // No split unit asked for here: libdw would open every skeleton's .dwo file to find it, and a Swift
    // binary's skeletons name clang module files (.pcm, megabytes each) that hold types, not code.
    while dwarf_get_units(dwarf, unit, &next, &version, &unitType, &cuDie, nil) == 0 {
      unit = next
      dieOffsets.append((dwarf_dieoffset(&cuDie), nil))
      let isCode = unitType == UInt8(DW_UT_compile) || unitType == UInt8(DW_UT_skeleton)
      guard isCode else { continue }
      let ranges = DieRanges.of(&cuDie)
      guard !ranges.isEmpty else { continue }
      // Split DWARF keeps the code-bearing DIEs in the split unit, fetched only for skeletons with code.
      var codeDie = cuDie
      if unitType == UInt8(DW_UT_skeleton), let next {
        var subDie = Dwarf_Die()
        if dwarf_cu_info(next, nil, nil, nil, &subDie, nil, nil, nil) == 0, subDie.addr != nil {
          codeDie = subDie
        }
      }
      units.append(Unit(die: codeDie))
      dieOffsets[dieOffsets.count - 1].unit = units.count - 1
      for range in ranges {
        unitRanges.append(UnitRange(start: range.start, end: range.end, unit: units.count - 1))
      }
    }
    unitRanges.sort { $0.start < $1.start }
    for (index, entry) in dieOffsets.enumerated() {
      guard let unitIndex = entry.unit else { continue }
      // The last unit's end is not known without the section; the previous unit's length stands in.
      let length =
        index + 1 < dieOffsets.count
        ? dieOffsets[index + 1].offset &- entry.offset
        : (index > 0 ? entry.offset &- dieOffsets[index - 1].offset : 0)
      units[unitIndex].byteLength = Int(clamping: length)
    }
  }

  /// Memory this index holds: the unit and range tables, the trees of units used so far, the name caches,
  /// and for each used unit as many bytes as its DIEs take for what libdw derives from them (abbreviations,
  /// the line table that `dwarf_getsrc_die` builds). The DIE bytes themselves are mapped pages of the file,
  /// given back between batches.
  var estimatedBytes: Int {
    let unitBytes = units.count * 128 + unitRanges.capacity * MemoryLayout<UnitRange>.stride
    return unitBytes + builtUnitBytes + nameBytes
  }

  private func unit(containing address: UInt64) -> Unit? {
    var low = 0
    var high = unitRanges.count
    while low < high {
      let middle = (low + high) / 2
      if unitRanges[middle].start <= address { low = middle + 1 } else { high = middle }
    }
    // Unit ranges may nest or overlap (for example a unit's overall range around another's): look back a few.
    var index = low - 1
    var looked = 0
    while index >= 0 && looked < 16 {
      let range = unitRanges[index]
      if address < range.end { return units[range.unit] }
      index -= 1
      looked += 1
    }
    return nil
  }

  /// Innermost first; empty when no unit covers the address.
  func frames(at moduleAddress: UInt64) -> [SourceFrame] {
    let address = moduleAddress &- bias
    guard let unit = unit(containing: address) else { return [] }
    if unit.tree == nil {
      let tree = ScopeTree(unit: &unit.die)
      unit.tree = tree
      builtUnitBytes += tree.estimatedBytes + unit.byteLength
    }
    let chain = unit.tree!.chain(containing: address)

    var innermost = SourceFrame(function: "??")
    if let line = dwarf_getsrc_die(&unit.die, address) {
      if let source = dwarf_linesrc(line, nil, nil) { innermost.file = fileName(source, in: unit) }
      var number: Int32 = 0
      if dwarf_lineno(line, &number) == 0 { innermost.line = Int(number) }
      var column: Int32 = 0
      if dwarf_linecol(line, &column) == 0 { innermost.column = Int(column) }
    }
    guard !chain.isEmpty else { return innermost.file == nil ? [] : [innermost] }

    var frames: [SourceFrame] = []
    frames.reserveCapacity(chain.count)
    var location = innermost
    for nodeIndex in chain.reversed() {
      let node = unit.tree!.nodes[nodeIndex]
      let name = functionName(node.die)
      frames.append(
        SourceFrame(
          function: name.display, systemName: name.systemName, file: location.file,
          line: location.line,
          column: location.column))
      if node.isInlined {
        location = SourceFrame(
          function: "", file: node.callFile.map { fileName($0, in: unit) }, line: node.callLine,
          column: node.callColumn)
      }
    }
    return frames
  }

  /// libdw joins a file with its include directory but leaves relative include directories relative;
  /// llvm-symbolizer (and a person looking for the file) puts them under the compilation directory. Names
  /// already under that directory came from directory entry 0, which is the compilation directory itself.
  private func fileName(_ pointer: UnsafePointer<CChar>, in unit: Unit) -> String {
    let key = UnsafeRawPointer(pointer)
    if let known = fileNames[key] { return known }
    var name = String(cString: pointer)
    if !name.hasPrefix("/"), let directory = unit.compilationDirectory, !name.hasPrefix(directory) {
      name = directory + name
    }
    fileNames[key] = name
    nameBytes += 64 + name.utf8.count
    return name
  }

  private func functionName(_ die: Dwarf_Die) -> DemangledName {
    var die = die
    let offset = dwarf_dieoffset(&die)
    if let known = functionNames[offset] { return known }
    var attribute = Dwarf_Attribute()
    let name: DemangledName
    if let linkage = stringAttribute(&die, DW_AT_linkage_name, &attribute)
      ?? stringAttribute(&die, DW_AT_MIPS_linkage_name, &attribute)
    {
      name = DemangledName(mangled: linkage)
    } else if let plain = stringAttribute(&die, DW_AT_name, &attribute) {
      name = DemangledName(display: plain)
    } else {
      name = DemangledName(display: "??")
    }
    functionNames[offset] = name
    nameBytes += name.estimatedBytes
    return name
  }

  private func stringAttribute(
    _ die: inout Dwarf_Die, _ code: Int, _ storage: inout Dwarf_Attribute
  )
    -> String?
  {
    guard dwarf_attr_integrate(&die, UInt32(code), &storage) != nil,
      let text = dwarf_formstring(&storage)
    else { return nil }
    return String(cString: text)
  }
}

extension DemangledName {
  init(display: String) {
    self.display = display
    self.systemName = nil
  }
}

enum DieRanges {
  /// Address ranges of a DIE (low/high pc or DW_AT_ranges); empty when it has no code.
  static func of(_ die: inout Dwarf_Die) -> [(start: UInt64, end: UInt64)] {
    var result: [(start: UInt64, end: UInt64)] = []
    var base: Dwarf_Addr = 0
    var start: Dwarf_Addr = 0
    var end: Dwarf_Addr = 0
    var offset = dwarf_ranges(&die, 0, &base, &start, &end)
    while offset > 0 {
      if end > start { result.append((start, end)) }
      offset = dwarf_ranges(&die, offset, &base, &start, &end)
    }
    return result
  }
}
