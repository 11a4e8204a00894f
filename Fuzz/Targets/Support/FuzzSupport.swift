import CFuzzDriver
import FlamespanELF
import Glibc

/// Runs libFuzzer's driver on `test` with this process's arguments, and exits with its status.
///
/// SwiftPM gives each executable an entry point of its own (it renames `main` so that tests can link the
/// module), and that entry takes the place of libFuzzer's `main()`; so each target's top-level code calls
/// this, which does what libFuzzer's `main()` would. Each target also exports `LLVMFuzzerTestOneInput`,
/// so the same file links with libFuzzer's `main()` outside SwiftPM (`swiftc -parse-as-library`).
public func runLibFuzzer(_ test: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> Never {
  var argc = CommandLine.argc
  var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
  exit(LLVMFuzzerRunDriver(&argc, &argv, test))
}

/// The input as an array, which every reader fuzzed here takes.
public func fuzzBytes(_ data: UnsafePointer<UInt8>, _ size: Int) -> [UInt8] {
  Array(UnsafeBufferPointer(start: data, count: size))
}

/// The input as an open file, read through `FileBytes` as the profiler reads binaries: a parser that asks
/// for more bytes than the file has gets nil from `pread`, and whatever it allocates for the request is
/// allocated here too (so an absurd size in a header shows up as a huge allocation, not as a quiet nil).
///
/// One unlinked temporary file serves every run of the process; each run rewrites it and reads it through
/// a `dup` of its descriptor, which `FileBytes` closes.
public func withInputFile<Result>(
  _ data: UnsafePointer<UInt8>, _ size: Int, _ body: (FileBytes) -> Result
) -> Result {
  let descriptor = InputFile.descriptor
  guard ftruncate(descriptor, 0) == 0, pwrite(descriptor, data, size, 0) == size else {
    fatalError("fuzz support: cannot write the input file: \(String(cString: strerror(errno)))")
  }
  return body(FileBytes(descriptor: dup(descriptor)))
}

private enum InputFile {
  static let descriptor: Int32 = {
    var template = Array("/tmp/flamespan-fuzz-XXXXXX".utf8CString)
    let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    guard descriptor >= 0 else { fatalError("fuzz support: cannot create a temporary file") }
    template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
    return descriptor
  }()
}
