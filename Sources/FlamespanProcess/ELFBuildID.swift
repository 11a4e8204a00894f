import FlamespanELF
import FlamespanModel

/// The GNU build id of a mapped file, read from its headers and notes alone (FlamespanELF), without
/// loading the file: ELF32 or ELF64, either byte order, whatever a process maps.
///
/// Any malformed, truncated or non-ELF input yields nil.
public enum ELFBuildID {
  public static func read(path: String) -> BuildID? {
    guard let file = FileBytes(regularFileAt: path),
      let elf = try? ELFFile(readingAnyLayout: file.read),
      let id = elf.gnuBuildID(read: file.read)
    else { return nil }
    return BuildID(bytes: id)
  }
}
