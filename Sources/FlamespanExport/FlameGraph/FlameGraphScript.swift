/// The JavaScript embedded in the SVG. It keeps each frame's original box so that zooming is a pure
/// function of (original layout, zoomed frame), and it never reads anything outside the document.
enum FlameGraphScript {
  static func source(characterWidth: Double, sidePadding: Double, usableWidth: Double) -> String {
    """
    (function () {
      "use strict";
      var characterWidth = \(characterWidth), left = \(sidePadding), fullWidth = \(usableWidth);
      var frames = Array.prototype.slice.call(document.querySelectorAll("g.frame"));
      var details = document.getElementById("details");
      var matched = document.getElementById("matched");
      var resetButton = document.getElementById("reset");
      var searchButton = document.getElementById("search");
      var searchPattern = null;

      frames.forEach(function (g) {
        var rect = g.querySelector("rect");
        g.box = { x: +rect.getAttribute("x"), width: +rect.getAttribute("width"),
                  depth: +g.getAttribute("data-depth"), name: g.getAttribute("data-name"),
                  fill: rect.getAttribute("fill"), tooltip: g.querySelector("title").textContent };
        g.addEventListener("click", function () { zoom(g); });
        g.addEventListener("mouseover", function () { details.textContent = g.box.tooltip; });
        g.addEventListener("mouseout", function () { details.textContent = " "; });
      });

      function place(g, x, width) {
        var rect = g.querySelector("rect"), text = g.querySelector("text");
        rect.setAttribute("x", x.toFixed(2));
        rect.setAttribute("width", width.toFixed(2));
        text.setAttribute("x", (x + 3).toFixed(2));
        var fitting = Math.floor((width - 6) / characterWidth), name = g.box.name;
        text.textContent = name.length <= fitting ? name :
          (fitting < 5 ? "" : name.substring(0, fitting - 2) + "..");
      }

      // The clicked frame fills the width; frames above it scale with it; frames below it that contain
      // it (its ancestors) stay full width and dimmed; everything else is hidden.
      function zoom(target) {
        var t = target.box, epsilon = 0.0001, scale = fullWidth / t.width;
        frames.forEach(function (g) {
          var b = g.box;
          g.classList.remove("ancestor");
          g.style.display = "";
          if (b.depth < t.depth && b.x <= t.x + epsilon && b.x + b.width >= t.x + t.width - epsilon) {
            g.classList.add("ancestor");
            place(g, left, fullWidth);
          } else if (b.depth >= t.depth && b.x >= t.x - epsilon && b.x + b.width <= t.x + t.width + epsilon) {
            place(g, left + (b.x - t.x) * scale, b.width * scale);
          } else {
            g.style.display = "none";
          }
        });
        resetButton.style.display = t.depth === 0 ? "none" : "";
      }

      function reset() {
        frames.forEach(function (g) {
          g.classList.remove("ancestor");
          g.style.display = "";
          place(g, g.box.x, g.box.width);
        });
        resetButton.style.display = "none";
      }

      // Highlights frames whose name matches and reports the share of all samples under them; nested
      // matches (recursion) are counted once by merging their intervals.
      function search(pattern) {
        var spans = [];
        frames.forEach(function (g) {
          var rect = g.querySelector("rect");
          if (pattern && pattern.test(g.box.name)) {
            rect.setAttribute("fill", "rgb(230,0,230)");
            spans.push([g.box.x, g.box.x + g.box.width]);
          } else {
            rect.setAttribute("fill", g.box.fill);
          }
        });
        if (!pattern) {
          matched.textContent = " ";
          searchButton.textContent = "Search";
          return;
        }
        spans.sort(function (a, b) { return a[0] - b[0]; });
        var covered = 0, end = -Infinity;
        spans.forEach(function (s) {
          if (s[0] >= end) { covered += s[1] - s[0]; end = s[1]; }
          else if (s[1] > end) { covered += s[1] - end; end = s[1]; }
        });
        matched.textContent = "Matched: " + (100 * covered / fullWidth).toFixed(2) + "% (" + spans.length + " frames)";
        searchButton.textContent = "Clear search";
      }

      function askForSearch() {
        if (searchPattern) { searchPattern = null; search(null); return; }
        var text = window.prompt("Search frames (regular expression):", "");
        if (!text) return;
        try { searchPattern = new RegExp(text); }
        catch (error) { window.alert("Not a valid regular expression: " + error.message); return; }
        search(searchPattern);
      }

      resetButton.addEventListener("click", reset);
      searchButton.addEventListener("click", askForSearch);
      document.addEventListener("keydown", function (event) {
        if ((event.ctrlKey || event.metaKey) && event.key === "f") { event.preventDefault(); askForSearch(); }
        if (event.key === "Escape") { reset(); }
      });
    })();
    """
  }
}
