import FlamespanTestSupport
import Foundation

/// A pprof file as `go tool pprof -raw` prints it (a reader other than ours), with each sample's frames
/// root first: function, file, line and the mapping's file, one frame per line of each location (inline
/// chains expanded).
struct RawPprof {
  struct Frame: Hashable, CustomStringConvertible {
    var function: String
    var file: String
    var line: Int
    /// The mapping's file name (no directory); empty when the location has no mapping.
    var mapping: String
    /// pprof's system name, when pprof shows it (it differs from the name pprof shows).
    var systemName = ""

    /// A Python frame: its function is a code object's, in a .py file (or frozen into the interpreter),
    /// or one that could not be named.
    var isPython: Bool {
      function == PythonFrames.unknownFrame || file.hasSuffix(".py") || file.hasPrefix("<frozen ")
    }

    /// The name pprof was given: `go tool pprof` blanks a name such as `<module>` whose system name
    /// equals it (see `expectNamesSurvivePprof`), which is checked apart; the other checks use this.
    var name: String { function.isEmpty ? systemName : function }

    /// The last part of a qualified name (`Handler.do_GET` → `do_GET`): what Python's own
    /// traceback and function definitions call it.
    var shortName: String {
      name.split(separator: ".").last.map(String.init) ?? name
    }

    var description: String {
      isPython
        ? "\(function) (\(file):\(line))" : mapping.isEmpty ? function : "\(function) (\(mapping))"
    }
  }

  struct Sample {
    var count: Int
    /// Root first.
    var frames: [Frame]
    var labels: [String: String]

    var pythonFrames: [Frame] { frames.filter(\.isPython) }
  }

  var samples: [Sample]

  var total: Int { samples.reduce(0) { $0 + $1.count } }

  static func read(_ path: String, home: TemporaryDirectory) throws -> RawPprof {
    let result = try Run.command(
      ["go", "tool", "pprof", "-raw", path],
      environment: [
        "HOME": home.url.path, "GOCACHE": home.file("gocache"), "GOPATH": home.file("gopath"),
        "PPROF_TMPDIR": home.url.path, "GOFLAGS": "", "GOTOOLCHAIN": "local",
      ])
    guard result.status == 0 else {
      throw TestFailure("go tool pprof -raw \(path) failed: \(result.stderr)")
    }
    return try RawPprof(text: result.stdout)
  }

  /// Parses the text: a `Samples:` section (`COUNT VALUE: LOCATION-IDS…`, leaf first, then label lines
  /// `key:[value]`), a `Locations` section (`ID: 0xADDR M=MAPPING FUNCTION FILE:LINE s=START`, further
  /// lines of an inline chain indented without an id) and a `Mappings` section (`ID: START/LIMIT/OFFSET
  /// FILE …`).
  init(text: String) throws {
    enum Section { case header, samples, locations, mappings }
    var section = Section.header
    var rawSamples: [(count: Int, locations: [Int], labels: [String: String])] = []
    var locations: [Int: (mapping: Int, lines: [(String, String, Int, String)])] = [:]
    var lastLocation: Int?
    var mappings: [Int: String] = [:]
    for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
      let trimmed = line.trimmingCharacters(in: .whitespaces)
      switch trimmed {
      case "Samples:":
        section = .samples
        continue
      case "Locations":
        section = .locations
        continue
      case "Mappings":
        section = .mappings
        continue
      default: break
      }
      switch section {
      case .header: continue
      case .samples:
        if let colon = trimmed.firstIndex(of: ":"),
          let values = Optional(trimmed[..<colon].split(separator: " ")), values.count >= 1,
          let count = Int(values[0]), !trimmed[..<colon].contains("[")
        {
          let ids = trimmed[trimmed.index(after: colon)...].split(separator: " ").compactMap {
            Int($0)
          }
          rawSamples.append((count, ids, [:]))
        } else if !rawSamples.isEmpty {
          // Labels: `key:[value]` pairs, several on a line.
          var rest = Substring(trimmed)
          while let open = rest.range(of: ":["),
            let close = rest[open.upperBound...].firstIndex(of: "]")
          {
            let key = rest[..<open.lowerBound].trimmingCharacters(in: .whitespaces)
            rawSamples[rawSamples.count - 1].labels[key] = String(rest[open.upperBound..<close])
            rest = rest[rest.index(after: close)...]
          }
        }
      case .locations:
        var body = Substring(trimmed)
        if let colon = body.firstIndex(of: ":"), let id = Int(body[..<colon]),
          body[body.index(after: colon)...].hasPrefix(" 0x")
        {
          body = body[body.index(after: colon)...].drop { $0 == " " }
          // The address and one space: the function's name may be empty, leaving a second space.
          body = body.drop { $0 != " " }.dropFirst()
          var mapping = 0
          if body.hasPrefix("M="), let space = body.firstIndex(of: " ") {
            mapping = Int(body[body.index(body.startIndex, offsetBy: 2)..<space]) ?? 0
            body = body[body.index(after: space)...]
          } else if body.hasPrefix("M=") {
            mapping = Int(body.dropFirst(2)) ?? 0
            body = ""
          }
          if body.hasPrefix("[F] ") { body = body.dropFirst(4) }
          locations[id] = (mapping, [])
          lastLocation = id
          if let frame = Self.frame(body) { locations[id]?.lines.append(frame) }
        } else if let id = lastLocation, let frame = Self.frame(body) {
          locations[id]?.lines.append(frame)
        }
      case .mappings:
        // ID: START/LIMIT/OFFSET FILE BUILDID [flags]
        let parts = trimmed.split(separator: " ")
        if parts.count >= 3, parts[0].hasSuffix(":"), let id = Int(parts[0].dropLast()) {
          mappings[id] = String(parts[2].split(separator: "/").last ?? parts[2])
        }
      }
    }
    guard !rawSamples.isEmpty || text.contains("Samples:") else {
      throw TestFailure("not go tool pprof -raw output: \(text.prefix(300))")
    }
    samples = try rawSamples.map { raw in
      var leafFirst: [Frame] = []
      for id in raw.locations {
        guard let location = locations[id] else {
          throw TestFailure("sample names location \(id), which pprof -raw did not list")
        }
        let mapping = mappings[location.mapping] ?? ""
        if location.lines.isEmpty {
          leafFirst.append(Frame(function: "[unsymbolized]", file: "", line: 0, mapping: mapping))
        }
        // A location's lines are its inline chain, innermost first.
        for (function, file, line, systemName) in location.lines {
          leafFirst.append(
            Frame(
              function: function, file: file, line: line, mapping: mapping, systemName: systemName))
        }
      }
      return Sample(count: raw.count, frames: leafFirst.reversed(), labels: raw.labels)
    }
  }

  /// `FUNCTION FILE:LINE s=START` with `(SYSTEM NAME)` after it when that differs from FUNCTION; FILE has
  /// no spaces, apart from frozen modules'.
  private static func frame(_ text: Substring) -> (String, String, Int, String)? {
    guard let start = text.range(of: " s=", options: .backwards) else { return nil }
    let head = text[..<start.lowerBound]
    // Frozen modules' files have a space: `<frozen importlib._bootstrap>`. An empty name leaves none
    // before the file on a trimmed line.
    let space =
      head.range(of: " <frozen ", options: .backwards)?.lowerBound ?? head.lastIndex(of: " ")
    let fileStart = space.map { head.index(after: $0) } ?? head.startIndex
    guard let colon = head.lastIndex(of: ":"), colon >= fileStart,
      let line = Int(head[head.index(after: colon)...])
    else { return nil }
    let after = text[start.upperBound...].drop { $0.isNumber }
    let systemName =
      after.hasPrefix("(") && after.hasSuffix(")") ? after.dropFirst().dropLast() : ""
    return (
      space.map { String(head[..<$0]) } ?? "", String(head[fileStart..<colon]), line,
      String(systemName)
    )
  }
}

/// What the Python-frame checks share: names, and each function's extent in its source file.
enum PythonFrames {
  /// Debian's CPython 3.11: never a pyenv or venv python3 that PATH may prefer.
  static let python = "/usr/bin/python3"
  static let unknownFrame = "[unknown Python frame]"

  /// A native frame of the C extension or of OpenSSL: what must show below a hashlib call.
  static func isHashlibNative(_ frame: RawPprof.Frame) -> Bool {
    guard !frame.isPython else { return false }
    let text = (frame.function + " " + frame.mapping).lowercased()
    return text.contains("sha256") || text.contains("libcrypto.so") || text.contains("_hashlib.")
  }

  /// Each function's first and last line per file (`ast`, by Python itself), keyed by the function's
  /// own name; `<module>` spans the whole file. Files that cannot be read are left out.
  struct Extents {
    var byFile: [String: [String: [ClosedRange<Int>]]]

    init(files: Set<String>) throws {
      let readable = files.filter { FileManager.default.isReadableFile(atPath: $0) }.sorted()
      guard !readable.isEmpty else {
        byFile = [:]
        return
      }
      let script = """
        import ast, json, sys
        out = {}
        for path in sys.argv[1:]:
            text = open(path, encoding="utf-8").read()
            table = {"<module>": [[1, max(1, text.count("\\n") + 1)]]}
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                    table.setdefault(node.name, []).append([first, node.end_lineno])
            out[path] = table
        print(json.dumps(out))
        """
      let result = try Run.command([PythonFrames.python, "-c", script] + readable)
      guard result.status == 0,
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
          as? [String: [String: [[Int]]]]
      else {
        throw TestFailure("reading function extents failed: \(result.stderr)")
      }
      byFile = object.mapValues { table in
        table.mapValues { ranges in ranges.compactMap { $0.count == 2 ? $0[0]...$0[1] : nil } }
      }
    }

    /// true when the frame's line lies inside a function of that name in its file; nil when the file
    /// could not be read (`<frozen importlib._bootstrap>`), where only a positive line can be asked for.
    func lineInside(_ frame: RawPprof.Frame) -> Bool? {
      guard frame.function != unknownFrame, frame.line > 0, !frame.file.isEmpty else {
        return false
      }
      guard let table = byFile[frame.file] else { return nil }
      return table[frame.shortName]?.contains { $0.contains(frame.line) } ?? false
    }
  }
}
