import FlamespanExport
import FlamespanModel
import Foundation
import Testing

#if canImport(FoundationXML)
  import FoundationXML
#endif

/// The frames of a rendered flame graph, read back with a real XML parser.
final class ParsedFlameGraph: NSObject, XMLParserDelegate {
  struct Frame {
    var name: String
    var count: Int64
    var depth: Int
    var x = 0.0
    var y = 0.0
    var width = 0.0
    var fill = ""
    var tooltip = ""
    var label = ""
  }
  private(set) var frames: [Frame] = []
  private(set) var texts: [String: String] = [:]
  private(set) var scriptLength = 0
  private var element: [String] = []
  private var currentTextID: String?
  private var text = ""

  init(_ svg: String) throws {
    super.init()
    let parser = XMLParser(data: Data(svg.utf8))
    parser.delegate = self
    guard parser.parse() else {
      throw ParseFailure(
        reason: parser.parserError.map { "\($0)" } ?? "unknown", line: parser.lineNumber)
    }
  }

  struct ParseFailure: Error {
    var reason: String
    var line: Int
  }

  func parser(
    _ parser: XMLParser, didStartElement name: String, namespaceURI: String?,
    qualifiedName: String?,
    attributes: [String: String]
  ) {
    element.append(name)
    text = ""
    switch name {
    case "g" where attributes["class"] == "frame":
      frames.append(
        Frame(
          name: attributes["data-name"] ?? "?", count: Int64(attributes["data-count"] ?? "") ?? -1,
          depth: Int(attributes["data-depth"] ?? "") ?? -1))
    case "rect" where element.dropLast().last == "g":
      frames[frames.count - 1].x = Double(attributes["x"] ?? "") ?? -1
      frames[frames.count - 1].y = Double(attributes["y"] ?? "") ?? -1
      frames[frames.count - 1].width = Double(attributes["width"] ?? "") ?? -1
      frames[frames.count - 1].fill = attributes["fill"] ?? ""
    case "text": currentTextID = attributes["id"]
    default: break
    }
  }

  func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }
  func parser(_ parser: XMLParser, foundCDATA block: Data) { scriptLength += block.count }

  func parser(
    _ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?
  ) {
    element.removeLast()
    switch name {
    case "title" where element.last == "g": frames[frames.count - 1].tooltip = text
    case "text" where element.last == "g": frames[frames.count - 1].label = text
    case "text": if let id = currentTextID { texts[id] = text }
    default: break
    }
    text = ""
  }

  func frame(_ name: String) -> Frame? { frames.first { $0.name == name } }
}

@Suite struct FlameGraphSVGTests {
  static let usableWidth = 1180.0

  @Test func widthsAreProportionalToCountsAndChildrenNestInParents() throws {
    let graph = try ParsedFlameGraph(FlameGraphSVG.render(Fixture.profile(), title: "Fixture"))
    let root = try #require(graph.frame("all"))
    #expect(root.count == 45)
    #expect(root.width == Self.usableWidth)
    for frame in graph.frames {
      #expect(abs(frame.width - Double(frame.count) / 45 * Self.usableWidth) < 0.01, "\(frame)")
      #expect(
        abs(frame.y - (root.y - Double(frame.depth) * 16)) < 0.01,
        "root at the bottom, one row per depth")
    }
    let hot = try #require(graph.frame("hot_function"))
    let cold = try #require(graph.frame("cold_function"))
    let main = try #require(graph.frames.first { $0.name == "main" && $0.count == 10 })
    #expect(hot.count == 35 && cold.count == 10)
    #expect(cold.x >= main.x && cold.x + cold.width <= main.x + main.width + 0.01)
    // Inline frames are separate boxes stacked on the function they were inlined into.
    #expect(graph.frame("inlined_middle")?.depth == hot.depth + 1)
    #expect(graph.frame("inlined_leaf")?.depth == hot.depth + 2)
    #expect(graph.frame("[vdso]")?.depth == hot.depth + 3)
    #expect(graph.frame("do_syscall_64")?.depth == hot.depth + 4)
    #expect(hot.tooltip == "hot_function (35 samples, 77.78%)")
    #expect(graph.frame("demo-worker")?.depth == 1, "the thread is the first frame above the root")
    #expect(graph.texts["title"] == "Fixture")
    #expect(graph.scriptLength > 1000, "the interactive script is embedded")
  }

  @Test func kernelFramesUseACoolHueAndUserFramesAWarmOne() throws {
    let graph = try ParsedFlameGraph(FlameGraphSVG.render(Fixture.profile(), title: "Fixture"))
    func rgb(_ fill: String) -> [Int] {
      fill.dropFirst(4).dropLast().split(separator: ",").compactMap { Int($0) }
    }
    let kernel = rgb(try #require(graph.frame("do_syscall_64")).fill)
    let user = rgb(try #require(graph.frame("hot_function")).fill)
    let unknown = rgb(try #require(graph.frame("[vdso]")).fill)
    #expect(kernel.count == 3 && kernel[2] > kernel[0], "kernel \(kernel)")
    #expect(user.count == 3 && user[0] > user[2], "user \(user)")
    #expect(unknown.count == 3 && Set(unknown).count == 1, "unresolved frames are gray: \(unknown)")
    #expect(
      graph.frame("hot_function")?.fill == graph.frame("hot_function")?.fill,
      "color depends on name only")
  }

  @Test func namesAreEscaped() throws {
    let name = #"std::vector<int>::operator<<&"quoted" 'single' ]]> tab"# + "\t" + "end"
    let location = ResolvedLocation(address: 1, mapping: nil, frames: [SourceFrame(function: name)])
    let profile = Profile(
      samples: [ProfileSample(stack: [location], pid: 1, tid: 1, threadName: "a&b", count: 4)],
      periodNanos: 1,
      startTimeNanos: 0, durationNanos: 0)
    let svg = FlameGraphSVG.render(profile, title: "<title> & \"more\"")
    let graph = try ParsedFlameGraph(svg)
    let expected = name.replacingOccurrences(of: "\t", with: " ")
    #expect(graph.frame(expected)?.tooltip == "\(expected) (4 samples, 100%)")
    #expect(graph.frame("a&b") != nil)
    #expect(graph.texts["title"] == "<title> & \"more\"")
  }

  @Test func framesUnderATenthOfAPercentAreLeftOut() throws {
    let big = ResolvedLocation(address: 1, mapping: nil, frames: [SourceFrame(function: "busy")])
    let tiny = ResolvedLocation(address: 2, mapping: nil, frames: [SourceFrame(function: "rare")])
    let profile = Profile(
      samples: [
        ProfileSample(stack: [big], pid: 1, tid: 1, threadName: "t", count: 10_000),
        ProfileSample(stack: [tiny, big], pid: 1, tid: 1, threadName: "t", count: 5),
      ], periodNanos: 1, startTimeNanos: 0, durationNanos: 0)
    let graph = try ParsedFlameGraph(FlameGraphSVG.render(profile, title: "t"))
    #expect(graph.frame("busy")?.count == 10_005)
    #expect(graph.frame("rare") == nil)
    #expect(
      graph.texts["subtitle"]?.contains("1 frames under 0.1% not drawn") == true, "\(graph.texts)")
  }

  @Test func largeProfilesStayBoundedAndValid() throws {
    // A small function pool makes many paths common enough to draw (threads × pool ≈ 250 at depth 2).
    let profile = LargeProfile.make(distinctSamples: 50_000, functionPool: 8)
    let svg = FlameGraphSVG.render(profile, title: "50k stacks")
    let graph = try ParsedFlameGraph(svg)
    #expect(svg.utf8.count < 4_000_000, "\(svg.utf8.count) bytes")
    #expect(graph.frames.count > 200)
    #expect(graph.frames.allSatisfy { Double($0.count) >= Double(profile.totalCount) * 0.001 })
    print("50k distinct samples: SVG of \(svg.utf8.count) bytes with \(graph.frames.count) frames")
  }

  @Test func emptyProfileStillRenders() throws {
    let graph = try ParsedFlameGraph(
      FlameGraphSVG.render(
        Profile(samples: [], periodNanos: 1, startTimeNanos: 0, durationNanos: 0), title: "none"))
    #expect(graph.frames.isEmpty, "no samples, nothing to draw")
    #expect(graph.texts["subtitle"]?.hasPrefix("0 samples") == true)
  }
}
