/// ELF symbols sorted by address, looked up the way llvm-symbolizer does so that both name the same function:
/// among symbols at one address the largest wins (ties go to the later table entry), and an address belongs
/// to the nearest symbol below it only while it lies inside that symbol's size (a size of 0 covers up to the
/// next symbol).
///
/// Names stay in the file's string table and are read only for symbols a lookup lands on: a big binary
/// has hundreds of thousands of symbols (a `swift-frontend`: 300 000, with 29 MB of names), and copying
/// every name into a Swift string took seconds of CPU and over 100 MB of heap per file.
struct SymbolTable {
  struct Entry {
    var address: UInt64
    /// Clamped to 4 GiB, far beyond any function.
    var size: UInt32
    /// Where the name starts in the string table (ELF's own `st_name`).
    var nameOffset: UInt32
  }

  private(set) var entries: [Entry]

  var isEmpty: Bool { entries.isEmpty }

  /// `symbols` in table order, the order that breaks ties between aliases.
  init(symbols: [Entry]) {
    let ordered = symbols.enumerated().sorted { left, right in
      if left.element.address != right.element.address {
        return left.element.address < right.element.address
      }
      if left.element.size != right.element.size { return left.element.size < right.element.size }
      return left.offset < right.offset
    }
    var kept: [Entry] = []
    kept.reserveCapacity(ordered.count)
    for (_, entry) in ordered {
      if let last = kept.last, last.address == entry.address {
        kept[kept.count - 1] = entry
      } else {
        kept.append(entry)
      }
    }
    entries = kept
    estimatedBytes = kept.capacity * MemoryLayout<Entry>.stride
  }

  /// What the table holds in the heap, for the symbolizer's byte budget.
  let estimatedBytes: Int

  func symbol(containing address: UInt64) -> Entry? {
    var low = 0
    var high = entries.count
    while low < high {
      let middle = (low + high) / 2
      if entries[middle].address <= address { low = middle + 1 } else { high = middle }
    }
    guard low > 0 else { return nil }
    let candidate = entries[low - 1]
    if candidate.size != 0 && candidate.address &+ UInt64(candidate.size) <= address { return nil }
    return candidate
  }
}
