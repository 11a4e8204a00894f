import FlamespanELF
import FlamespanRuntimes
import FuzzSupport

/// The ELF header reader (`ELFFile`) on a file read through `FileBytes`, then what the profiler does
/// next with the layout: look sections up, translate file offsets, and look for a Go function table.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  withInputFile(data, size) { file in
    guard let elf = try? ELFFile(read: file.read) else { return }
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
