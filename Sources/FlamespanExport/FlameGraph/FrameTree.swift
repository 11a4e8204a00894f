import FlamespanModel

/// The merged call tree behind a flame graph: every distinct path from the root is one node whose count
/// is the number of samples passing through it.
struct FrameTree {
  struct Node {
    var frame: FlameFrame
    var count: Int64
    var depth: Int
    var children: [FlameFrame: Int] = [:]
  }

  /// Index 0 is the synthetic root ("all"); the others are in creation order.
  private(set) var nodes: [Node]

  init(_ profile: Profile) {
    nodes = [Node(frame: FlameFrame(name: "all", kind: .thread), count: 0, depth: 0)]
    for sample in profile.samples where sample.count > 0 {
      nodes[0].count += sample.count
      var current = 0
      for frame in StackFrames.rootFirst(sample) {
        if let child = nodes[current].children[frame] {
          current = child
        } else {
          nodes.append(Node(frame: frame, count: 0, depth: nodes[current].depth + 1))
          nodes[current].children[frame] = nodes.count - 1
          current = nodes.count - 1
        }
        nodes[current].count += sample.count
      }
    }
  }

  var total: Int64 { nodes[0].count }

  /// Children ordered by name, the classic flame graph order: it puts the same function in the same place
  /// across runs, which time order or count order would not.
  func sortedChildren(of index: Int) -> [Int] {
    nodes[index].children.values.sorted { left, right in
      let a = nodes[left].frame
      let b = nodes[right].frame
      return a.name != b.name ? a.name < b.name : "\(a.kind)" < "\(b.kind)"
    }
  }
}
