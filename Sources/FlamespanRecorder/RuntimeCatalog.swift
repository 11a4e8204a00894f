import FlamespanRuntimes

/// The runtime plug-ins `--unwind auto` uses, in the order they are asked whether they own a frame.
enum RuntimeCatalog {
  static func standard() -> [any Runtime] {
    [GoRuntime(), PerfMapRuntime(), CPythonRuntime()]
  }
}
