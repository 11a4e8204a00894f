import Foundation

/// A `.folded` file read back: one `frame;frame;… count` line per distinct stack, root first.
struct FoldedProfile {
  var stacks: [(frames: [String], count: Int)]

  init(contentsOf url: URL) throws {
    let text = try String(contentsOf: url, encoding: .utf8)
    stacks = text.split(separator: "\n").compactMap { line in
      guard let space = line.lastIndex(of: " "), let count = Int(line[line.index(after: space)...])
      else {
        return nil
      }
      return (line[..<space].split(separator: ";").map(String.init), count)
    }
  }

  var total: Int { stacks.reduce(0) { $0 + $1.count } }

  /// Samples whose stacks satisfy `predicate`.
  func count(where predicate: ([String]) -> Bool) -> Int {
    stacks.filter { predicate($0.frames) }.reduce(0) { $0 + $1.count }
  }

  /// Samples whose real (non-inline) leaf function is `name`, as perf attributes self time. An inline frame
  /// named `inlined` may sit above it.
  func selfCount(of name: String, allowingInline inlined: Set<String> = []) -> Int {
    count { frames in
      var tail = frames[...]
      while let last = tail.last, inlined.contains(last) { tail = tail.dropLast() }
      return tail.last == name
    }
  }
}
