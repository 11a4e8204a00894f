import FlamespanModel

/// How the names a JIT writes into its perf map become frames.
public enum PerfMapNames {
  /// The kind of code a process's JIT writes, from its executable's file name.
  public static func frameType(executableName name: String?) -> FrameType {
    guard let name else { return .native }
    switch name {
    case "node", "nodejs": return .v8JavaScript
    case "java": return .jvm
    case "dotnet": return .dotnet
    default: return name.hasPrefix("python") ? .cpython : .native
    }
  }

  /// The frame for one perf-map name. V8's names (`JS:*burn /app.js:3:18`, `LazyCompile:~f file:3`)
  /// lose their tag and tier marker and give their file and line; CPython's `py::f:/app.py` gives its
  /// file. Anything else, Java's `Lcom/example/Foo;::bar` or `Interpreter` among them, is kept as
  /// written.
  public static func frame(name raw: String, frameType: FrameType) -> SourceFrame {
    let name = trimmed(raw)
    // A JVM's or .NET's method names are never rewritten, whatever they start with.
    if frameType == .jvm || frameType == .dotnet { return SourceFrame(function: name) }
    if frameType != .cpython, let frame = v8Frame(name) { return frame }
    if frameType != .v8JavaScript, let frame = pythonFrame(name) { return frame }
    return SourceFrame(function: name)
  }

  /// The tags V8 puts before a JavaScript function's name (older releases used the event names).
  static let v8FunctionTags = ["JS:", "LazyCompile:", "Function:", "Script:", "Eval:"]

  static func v8Frame(_ name: String) -> SourceFrame? {
    guard let tag = v8FunctionTags.first(where: { name.hasPrefix($0) }) else { return nil }
    var rest = Substring(name.dropFirst(tag.count))
    // The tier: ~ interpreted, ^ baseline, + Maglev, * TurboFan.
    if let first = rest.first, "*~^+".contains(first) { rest = rest.dropFirst() }
    rest = rest.drop(while: { $0 == " " })
    var function = rest
    var file: String?
    var line = 0
    var column = 0
    // The location is the last word: `path:line` or `path:line:column`.
    if let space = rest.lastIndex(of: " ") {
      let location = rest[rest.index(after: space)...]
      if let parsed = parseLocation(location) {
        function = rest[..<space]
        (file, line, column) = parsed
      }
    } else if let parsed = parseLocation(rest) {
      // An anonymous function: nothing but the location.
      function = ""
      (file, line, column) = parsed
    }
    let functionName = function.trimmingBlanks()
    return SourceFrame(
      function: functionName.isEmpty ? "(anonymous)" : String(functionName), file: file, line: line,
      column: column)
  }

  /// `path:line[:column]`, with a non-empty path; nil for anything else.
  static func parseLocation(_ text: Substring) -> (String, Int, Int)? {
    let parts = text.split(separator: ":", omittingEmptySubsequences: false)
    func number(_ part: Substring) -> Int? {
      guard !part.isEmpty, part.count <= 9, part.allSatisfy({ $0.isASCII && $0.isNumber }) else {
        return nil
      }
      return Int(part)
    }
    guard parts.count >= 2 else { return nil }
    if parts.count >= 3, let line = number(parts[parts.count - 2]),
      let column = number(parts[parts.count - 1])
    {
      let file = text[..<parts[parts.count - 2].startIndex].dropLast()
      guard !file.isEmpty else { return nil }
      return (String(file), line, column)
    }
    guard let line = number(parts[parts.count - 1]) else { return nil }
    let file = text[..<parts[parts.count - 1].startIndex].dropLast()
    guard !file.isEmpty else { return nil }
    return (String(file), line, 0)
  }

  /// CPython 3.12's `-X perf` trampolines: `py::function:/path/file.py`.
  static func pythonFrame(_ name: String) -> SourceFrame? {
    guard name.hasPrefix("py::") else { return nil }
    let rest = name.dropFirst(4)
    guard let colon = rest.firstIndex(of: ":") else { return SourceFrame(function: String(rest)) }
    let function = rest[..<colon]
    let file = rest[rest.index(after: colon)...]
    guard !function.isEmpty else { return nil }
    return SourceFrame(function: String(function), file: file.isEmpty ? nil : String(file))
  }

  static func trimmed(_ text: String) -> String {
    String(Substring(text).trimmingBlanks())
  }
}

extension Substring {
  fileprivate func trimmingBlanks() -> Substring {
    let isBlank: (Character) -> Bool = { $0.isWhitespace }
    guard let first = firstIndex(where: { !isBlank($0) }),
      let last = lastIndex(where: { !isBlank($0) })
    else { return self[endIndex...] }
    return self[first...last]
  }
}
