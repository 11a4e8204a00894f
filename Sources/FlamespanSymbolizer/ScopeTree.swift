import CLibDW

/// The functions and inlined calls of one compile unit, nested as in the DIE tree, with their address ranges.
/// Lexical blocks, namespaces and types are looked through: only code-bearing subprograms and inlined
/// subroutines become nodes.
struct ScopeTree {
  struct Node {
    var die: Dwarf_Die
    var rangeStart: Int
    var rangeCount: Int
    var firstChild = -1
    var nextSibling = -1
    var isInlined: Bool
    /// Where this inlined call sits in its caller (DW_AT_call_*), meaningful only when `isInlined`.
    var callFile: UnsafePointer<CChar>?
    var callLine = 0
    var callColumn = 0
  }

  private struct TopLevelRange {
    var start: UInt64
    var end: UInt64
    var node: Int
  }

  private(set) var nodes: [Node] = []
  /// Parallel to `nodes`, only while building: where the next child gets linked.
  private var lastChild: [Int] = []
  private var ranges: [(start: UInt64, end: UInt64)] = []
  private var topLevel: [TopLevelRange] = []
  private var files: OpaquePointer? = nil
  private var fileCount = 0

  init(unit: inout Dwarf_Die) {
    var sourceFiles: OpaquePointer? = nil
    var count = 0
    if dwarf_getsrcfiles(&unit, &sourceFiles, &count) == 0 {
      files = sourceFiles
      fileCount = count
    }
    collect(childrenOf: &unit, parent: -1, depth: 0)
    topLevel.sort { $0.start < $1.start }
  }

  private mutating func collect(childrenOf parentDie: inout Dwarf_Die, parent: Int, depth: Int) {
    // Real DWARF nests a few dozen levels; a corrupt, absurdly deep tree must not exhaust the stack.
    guard depth < 256 else { return }
    var child = Dwarf_Die()
    guard dwarf_child(&parentDie, &child) == 0 else { return }
    repeat {
      let tag = Int(dwarf_tag(&child))
      switch tag {
      case DW_TAG_subprogram, DW_TAG_inlined_subroutine:
        let dieRanges = DieRanges.of(&child)
        if !dieRanges.isEmpty {
          let index = addNode(
            die: child, ranges: dieRanges, isInlined: tag == DW_TAG_inlined_subroutine)
          if parent < 0 {
            for range in dieRanges {
              topLevel.append(TopLevelRange(start: range.start, end: range.end, node: index))
            }
          } else {
            appendChild(index, to: parent)
          }
          collect(childrenOf: &child, parent: index, depth: depth + 1)
        }
      case DW_TAG_lexical_block, DW_TAG_namespace, DW_TAG_module, DW_TAG_structure_type,
        DW_TAG_class_type,
        DW_TAG_union_type:
        collect(childrenOf: &child, parent: parent, depth: depth + 1)
      default:
        break
      }
      var sibling = Dwarf_Die()
      guard dwarf_siblingof(&child, &sibling) == 0 else { break }
      child = sibling
    } while true
  }

  private mutating func appendChild(_ child: Int, to parent: Int) {
    if nodes[parent].firstChild < 0 {
      nodes[parent].firstChild = child
    } else {
      nodes[lastChild[parent]].nextSibling = child
    }
    lastChild[parent] = child
  }

  private mutating func addNode(
    die: Dwarf_Die, ranges dieRanges: [(start: UInt64, end: UInt64)], isInlined: Bool
  )
    -> Int
  {
    var die = die
    var node = Node(
      die: die, rangeStart: ranges.count, rangeCount: dieRanges.count, isInlined: isInlined)
    ranges.append(contentsOf: dieRanges)
    if isInlined {
      var attribute = Dwarf_Attribute()
      var value: Dwarf_Word = 0
      if dwarf_attr(&die, UInt32(DW_AT_call_file), &attribute) != nil,
        dwarf_formudata(&attribute, &value) == 0,
        let files, Int(value) < fileCount
      {
        node.callFile = dwarf_filesrc(files, Int(value), nil, nil)
      }
      if dwarf_attr(&die, UInt32(DW_AT_call_line), &attribute) != nil,
        dwarf_formudata(&attribute, &value) == 0
      {
        node.callLine = Int(value)
      }
      if dwarf_attr(&die, UInt32(DW_AT_call_column), &attribute) != nil,
        dwarf_formudata(&attribute, &value) == 0
      {
        node.callColumn = Int(value)
      }
    }
    nodes.append(node)
    lastChild.append(-1)
    return nodes.count - 1
  }

  private func contains(_ node: Int, _ address: UInt64) -> Bool {
    let item = nodes[node]
    for range in ranges[item.rangeStart..<(item.rangeStart + item.rangeCount)]
    where address >= range.start && address < range.end {
      return true
    }
    return false
  }

  /// Heap bytes of the tree's arrays.
  var estimatedBytes: Int {
    nodes.capacity * MemoryLayout<Node>.stride + lastChild.capacity * MemoryLayout<Int>.stride
      + ranges.capacity * MemoryLayout<(start: UInt64, end: UInt64)>.stride
      + topLevel.capacity * MemoryLayout<TopLevelRange>.stride
  }

  /// Node indices from the outermost function down to the innermost inlined call covering `address`.
  func chain(containing address: UInt64) -> [Int] {
    var low = 0
    var high = topLevel.count
    while low < high {
      let middle = (low + high) / 2
      if topLevel[middle].start <= address { low = middle + 1 } else { high = middle }
    }
    var outer = -1
    var index = low - 1
    var looked = 0
    while index >= 0 && looked < 8 {
      if address < topLevel[index].end {
        outer = topLevel[index].node
        break
      }
      index -= 1
      looked += 1
    }
    guard outer >= 0 else { return [] }
    var chain = [outer]
    var current = outer
    descend: while true {
      var child = nodes[current].firstChild
      while child >= 0 {
        if contains(child, address) {
          chain.append(child)
          current = child
          continue descend
        }
        child = nodes[child].nextSibling
      }
      break
    }
    return chain
  }
}
