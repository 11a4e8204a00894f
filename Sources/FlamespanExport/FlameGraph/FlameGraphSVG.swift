import FlamespanModel

/// A self-contained interactive flame graph: root at the bottom, one box per frame with its width
/// proportional to its sample count, tooltips, click-to-zoom, search and a details line (see
/// `FlameGraphScript`). Opens in any browser with no other file.
public enum FlameGraphSVG {
  static let width = 1200.0
  static let sidePadding = 10.0
  static let frameHeight = 16.0
  static let topPadding = 56.0
  static let bottomPadding = 30.0
  /// Frames under this share of all samples would be under ~1 pixel wide; leaving them out bounds the file
  /// size for huge profiles without changing what a person can see.
  static let minimumShare = 0.001
  /// Approximate advance of one character of the 11px monospace font, for deciding how much of a name fits.
  static let characterWidth = 6.7

  public static func render(_ profile: Profile, title: String) -> String {
    let tree = FrameTree(profile)
    let total = tree.total
    let usableWidth = width - 2 * sidePadding

    // Lay out the kept frames first to learn the depth, which fixes the height and so every y.
    struct Placed {
      var node: Int
      var x: Double
      var width: Double
    }
    var placed: [Placed] = []
    var omitted = 0
    var maxDepth = 0
    if total > 0 {
      let minimumCount = Double(total) * minimumShare
      var pending = [Placed(node: 0, x: sidePadding, width: usableWidth)]
      while let current = pending.popLast() {
        placed.append(current)
        maxDepth = max(maxDepth, tree.nodes[current.node].depth)
        var childX = current.x
        for child in tree.sortedChildren(of: current.node) {
          let count = tree.nodes[child].count
          let childWidth = Double(count) / Double(total) * usableWidth
          if Double(count) >= minimumCount {
            pending.append(Placed(node: child, x: childX, width: childWidth))
          } else {
            omitted += 1
          }
          childX += childWidth
        }
      }
    }

    let height = topPadding + Double(maxDepth + 1) * frameHeight + bottomPadding
    var svg = """
      <?xml version="1.0" encoding="UTF-8" standalone="no"?>
      <svg version="1.1" xmlns="http://www.w3.org/2000/svg" width="\(format(width))" height="\(format(height))" \
      viewBox="0 0 \(format(width)) \(format(height))">
      <style>
      text { font-family: monospace; font-size: 11px; fill: #000; }
      #title { font-size: 17px; font-family: sans-serif; }
      #subtitle { fill: #555; font-family: sans-serif; }
      .control { cursor: pointer; fill: #1a4f8b; font-family: sans-serif; font-size: 12px; }
      .control:hover { text-decoration: underline; }
      g.frame { cursor: pointer; }
      g.frame:hover rect { stroke: #000; stroke-width: 0.5; }
      g.frame text { pointer-events: none; }
      g.ancestor rect { opacity: 0.55; }
      </style>
      <rect x="0" y="0" width="\(format(width))" height="\(format(height))" fill="#fdf8f0"/>
      <text id="title" x="\(format(width / 2))" y="22" text-anchor="middle">\(XMLText.escape(title))</text>
      <text id="subtitle" x="\(format(width / 2))" y="40" text-anchor="middle">\(subtitle(profile, total: total, omitted: omitted))</text>
      <text id="reset" class="control" x="\(format(sidePadding))" y="22" style="display:none">Reset zoom</text>
      <text id="search" class="control" x="\(format(width - sidePadding))" y="22" text-anchor="end">Search</text>
      <text id="details" x="\(format(sidePadding))" y="\(format(height - 10))"> </text>
      <text id="matched" x="\(format(width - sidePadding))" y="\(format(height - 10))" text-anchor="end"> </text>
      <g id="frames">

      """
    for frame in placed.sorted(by: { $0.node < $1.node }) {
      let node = tree.nodes[frame.node]
      let y = height - bottomPadding - Double(node.depth + 1) * frameHeight
      let name = XMLText.escape(node.frame.name)
      let tooltip = "\(name) (\(node.count) samples, \(percent(node.count, of: total))%)"
      svg += """
        <g class="frame" data-name="\(name)" data-count="\(node.count)" data-depth="\(node.depth)"><title>\(tooltip)</title>\
        <rect x="\(format(frame.x))" y="\(format(y))" width="\(format(frame.width))" height="\(format(frameHeight - 1))" \
        rx="2" fill="\(color(for: node.frame, isRoot: frame.node == 0))"/>\
        <text x="\(format(frame.x + 3))" y="\(format(y + frameHeight - 4.5))">\(XMLText.escape(label(node.frame.name, width: frame.width)))</text></g>

        """
    }
    svg += "</g>\n<script type=\"text/ecmascript\"><![CDATA[\n"
    svg += FlameGraphScript.source(
      characterWidth: characterWidth, sidePadding: sidePadding, usableWidth: usableWidth)
    svg += "\n]]></script>\n</svg>\n"
    return svg
  }

  private static func subtitle(_ profile: Profile, total: Int64, omitted: Int) -> String {
    var text = "\(total) samples"
    if profile.periodNanos > 0 {
      text += ", \(format(Double(total) * Double(profile.periodNanos) / 1e9)) s of CPU"
    }
    if omitted > 0 { text += ", \(omitted) frames under 0.1% not drawn" }
    return text + " · click a frame to zoom"
  }

  /// As much of `name` as fits in a box of `width`, cut with "..", or nothing when too little would show.
  static func label(_ name: String, width: Double) -> String {
    let fitting = Int((width - 6) / characterWidth)
    if name.count <= fitting { return name }
    // A cut name needs a few real characters before ".." to be recognisable at all.
    if fitting < 5 { return "" }
    return String(name.prefix(fitting - 2)) + ".."
  }

  static func color(for frame: FlameFrame, isRoot: Bool) -> String {
    if isRoot { return "rgb(214,214,214)" }
    let hash = fnv1a(frame.name)
    let a = Int(hash % 1000)
    let b = Int((hash >> 20) % 1000)
    let c = Int((hash >> 40) % 1000)
    func spread(_ base: Int, _ range: Int, _ value: Int) -> Int { base + value * range / 1000 }
    switch frame.kind {
    case .user:  // warm: reds, oranges, yellows
      return "rgb(\(spread(205, 50, a)),\(spread(60, 170, b)),\(spread(0, 55, c)))"
    case .kernel:  // cool teal-blue, so time in the kernel stands out from the program's own code
      return "rgb(\(spread(60, 50, a)),\(spread(160, 50, b)),\(spread(195, 55, c)))"
    case .jit:  // greens, as perf's flame graphs colour JIT code
      return "rgb(\(spread(50, 60, a)),\(spread(170, 50, b)),\(spread(50, 60, c)))"
    case .unresolved:  // gray: we do not know what runs there
      let gray = spread(165, 40, a)
      return "rgb(\(gray),\(gray),\(gray))"
    case .thread:
      return "rgb(\(spread(185, 30, a)),\(spread(170, 30, b)),\(spread(225, 30, c)))"
    }
  }

  private static func fnv1a(_ text: String) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in text.utf8 {
      hash ^= UInt64(byte)
      hash = hash &* 0x100_0000_01b3
    }
    return hash
  }

  /// "12.34" for 12.34%, with integer arithmetic so no locale or Foundation is involved.
  static func percent(_ count: Int64, of total: Int64) -> String {
    guard total > 0 else { return "0" }
    let hundredths = (Double(count) * 10_000 / Double(total)).rounded()
    return format(hundredths / 100)
  }

  /// Two decimals at most, without trailing zeros: keeps coordinates short and exact enough.
  static func format(_ value: Double) -> String {
    let scaled = Int64((value * 100).rounded())
    let sign = scaled < 0 ? "-" : ""
    let magnitude = scaled.magnitude
    let whole = magnitude / 100
    let fraction = magnitude % 100
    if fraction == 0 { return "\(sign)\(whole)" }
    if fraction % 10 == 0 { return "\(sign)\(whole).\(fraction / 10)" }
    return "\(sign)\(whole).\(fraction < 10 ? "0" : "")\(fraction)"
  }
}
