import CLibDW

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// The callbacks and debug search path handed to every `Dwfl`. libdwfl keeps pointers to both, so they live
/// in one object that each open file retains.
final class DwflConfiguration: @unchecked Sendable {
  let callbacks: UnsafeMutablePointer<Dwfl_Callbacks>
  private let debugPath: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>

  init(debugDirectories: [String]) {
    // Empty entry: the binary's own directory; ".debug": its subdirectory; absolute roots: build-id trees and
    // ROOT/<binary dir>. The leading "-" skips the CRC check, which would read every debug file fully.
    let entries = ["", ".debug"] + debugDirectories.filter { !$0.isEmpty }
    let pathText = "-" + entries.joined(separator: ":")
    debugPath = .allocate(capacity: 1)
    debugPath.initialize(to: strdup(pathText))
    callbacks = .allocate(capacity: 1)
    callbacks.initialize(
      to: Dwfl_Callbacks(
        find_elf: dwfl_build_id_find_elf,
        find_debuginfo: dwfl_standard_find_debuginfo,
        section_address: dwfl_offline_section_address,
        debuginfo_path: debugPath))
  }

  deinit {
    callbacks.deinitialize(count: 1)
    callbacks.deallocate()
    free(debugPath.pointee)
    debugPath.deinitialize(count: 1)
    debugPath.deallocate()
  }
}

enum DwflMessage {
  static var last: String {
    if let text = dwfl_errmsg(-1) { return String(cString: text) }
    return "unknown libdwfl error"
  }
}
