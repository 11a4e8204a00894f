import FlamespanExport
import FlamespanModel
import FlamespanTestSupport
import Foundation
import Testing

/// Runs the flame graph's embedded script in a real browser engine (headless Chromium): clicks, hovers and
/// searches are dispatched as DOM events and the resulting boxes are read back.
@Suite struct FlameGraphBrowserTests {
  static let harness = """
    <pre id="result"></pre>
    <script>
    function frame(name, count) {
      return Array.from(document.querySelectorAll("g.frame")).find(function (g) {
        return g.getAttribute("data-name") === name && (count === undefined || g.getAttribute("data-count") == count);
      });
    }
    function box(name, count) {
      var g = frame(name, count), r = g.querySelector("rect");
      return { x: +r.getAttribute("x"), width: +r.getAttribute("width"), hidden: g.style.display === "none",
               ancestor: g.classList.contains("ancestor"), label: g.querySelector("text").textContent,
               fill: r.getAttribute("fill") };
    }
    function click(element) { element.dispatchEvent(new MouseEvent("click", { bubbles: true })); }
    var out = {};
    frame("cold_function").dispatchEvent(new MouseEvent("mouseover", { bubbles: true }));
    out.details = document.getElementById("details").textContent;
    click(frame("hot_function"));
    out.zoomed = { hot: box("hot_function"), leaf: box("inlined_leaf"), worker: box("demo-worker"),
                   root: box("all"), cold: box("cold_function"), coldMain: box("main", 10),
                   reset: document.getElementById("reset").style.display };
    click(document.getElementById("reset"));
    out.reset = { hot: box("hot_function"), cold: box("cold_function") };
    window.prompt = function () { return "cold|syscall"; };
    click(document.getElementById("search"));
    out.search = { matched: document.getElementById("matched").textContent, cold: box("cold_function").fill,
                   main: box("main", 10).fill, button: document.getElementById("search").textContent };
    click(document.getElementById("search"));
    out.cleared = { matched: document.getElementById("matched").textContent, cold: box("cold_function").fill };
    document.getElementById("result").textContent = JSON.stringify(out);
    </script>
    """

  struct Box: Decodable {
    var x: Double
    var width: Double
    var hidden: Bool
    var ancestor: Bool
    var label: String
    var fill: String
  }
  struct Results: Decodable {
    struct Zoomed: Decodable {
      var hot, leaf, worker, root, cold, coldMain: Box
      var reset: String
    }
    struct Reset: Decodable { var hot, cold: Box }
    struct Search: Decodable { var matched, cold, main, button: String }
    struct Cleared: Decodable { var matched, cold: String }
    var details: String
    var zoomed: Zoomed
    var reset: Reset
    var search: Search
    var cleared: Cleared
  }

  @Test(.requires(.tool(anyOf: ["chromium", "chromium-browser"])))
  func clickZoomsSearchHighlightsAndResetRestores() throws {
    let chromium = try #require(
      TestEnvironment.which("chromium") ?? TestEnvironment.which("chromium-browser"))
    let directory = try TemporaryDirectory("browser")
    let svg = FlameGraphSVG.render(Fixture.profile(), title: "browser test")
    let inlineSVG = svg.drop(while: { $0 != "\n" }).dropFirst()  // the XML declaration is not HTML
    let page = "<!doctype html><html><body>\(inlineSVG)\(Self.harness)</body></html>"
    try page.write(toFile: directory.file("page.html"), atomically: true, encoding: .utf8)
    let output = try Run.command(
      [
        chromium,
        "--headless", "--no-sandbox", "--disable-gpu",
        "--user-data-dir=\(directory.file("profile"))",
        "--dump-dom", "file://\(directory.file("page.html"))",
      ], environment: ["HOME": directory.path])
    try #require(output.status == 0, "chromium failed: \(output.stderr)")
    guard let start = output.stdout.range(of: "<pre id=\"result\">"),
      let end = output.stdout.range(of: "</pre>", range: start.upperBound..<output.stdout.endIndex)
    else {
      Issue.record(
        "no result in the page:\n\(output.stdout.suffix(2000))\n\(output.stderr.suffix(2000))")
      return
    }
    let json = String(output.stdout[start.upperBound..<end.lowerBound]).replacingOccurrences(
      of: "&quot;", with: "\""
    )
    .replacingOccurrences(of: "&amp;", with: "&")
    let results = try JSONDecoder().decode(Results.self, from: Data(json.utf8))

    #expect(results.details == "cold_function (10 samples, 22.22%)")

    let zoomed = results.zoomed
    #expect(zoomed.hot.x == 10 && zoomed.hot.width == 1180, "the clicked frame fills the width")
    #expect(zoomed.leaf.width == 1180 && !zoomed.leaf.hidden, "frames above scale with it")
    #expect(zoomed.worker.ancestor && zoomed.worker.width == 1180, "ancestors stay, full width")
    #expect(zoomed.root.ancestor)
    #expect(zoomed.cold.hidden && zoomed.coldMain.hidden, "unrelated frames are hidden")
    #expect(zoomed.reset == "", "reset control appears")

    #expect(
      results.reset.hot.width > 900 && results.reset.hot.width < 1180 && !results.reset.cold.hidden)
    #expect(results.reset.hot.label == "hot_function")

    #expect(
      results.search.matched == "Matched: 100.00% (2 frames)", "cold 10 + do_syscall_64 35 of 45")
    #expect(results.search.cold == "rgb(230,0,230)")
    #expect(results.search.main != "rgb(230,0,230)")
    #expect(results.search.button == "Clear search")
    #expect(results.cleared.matched == " " && results.cleared.cold != "rgb(230,0,230)")
  }
}
