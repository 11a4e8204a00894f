import FlamespanELF
import FlamespanRuntimes
import FuzzSupport

/// The ELF header reader (`ELFFile`) on a file read through `FileBytes`, then what the profiler does
/// next with the layout: read the build id (any class and byte order, as the process inspector does),
/// check the file's completeness (as the symbolizer does), look sections up, translate file offsets, and
/// look for a Go function table.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  withInputFile(data, size) { file in
    if let anyLayout = try? ELFFile(readingAnyLayout: file.read) {
      _ = anyLayout.gnuBuildID(read: file.read)
      _ = anyLayout.truncation(fileSize: UInt64(size))
    }
    guard let elf = try? ELFFile(read: file.read) else { return }
    _ = elf.truncation(fileSize: file.size ?? 0)
    for segment in elf.segments {
      _ = elf.isLoaded(virtualAddress: segment.virtualAddress &+ segment.memorySize)
    }
    for name in [".text", ".eh_frame", ".gopclntab", ".note.gnu.build-id"] {
      _ = elf.section(named: name)
    }
    for segment in elf.segments {
      _ = elf.virtualAddress(ofFileOffset: segment.fileOffset)
      _ = elf.virtualAddress(ofFileOffset: segment.fileOffset &+ segment.fileSize)
    }
    _ = GoBinary.load(name: "fuzz", read: file.read)
  }
  return 0
}

runLibFuzzer { data, size in fuzz(data!, size) }
