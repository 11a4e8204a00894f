import FlamespanModel
import Testing

@Suite struct HexCodingTests {
  @Test func roundTripsBytes() {
    let bytes: [UInt8] = [0x00, 0x0f, 0xa0, 0xff, 0x4b]
    #expect(HexCoding.encode(bytes) == "000fa0ff4b")
    #expect(HexCoding.decode("000FA0ff4b") == bytes)
  }

  @Test func rejectsMalformedHex() {
    #expect(HexCoding.decode("abc") == nil)
    #expect(HexCoding.decode("zz") == nil)
    #expect(BuildID(hex: "0g") == nil)
  }

  @Test func displayNameNeverInventsAFunction() {
    let vdso = Mapping(start: 0x1000, limit: 0x2000, fileOffset: 0, path: "[vdso]", kind: .vdso)
    #expect(ResolvedLocation(address: 0x1010, mapping: vdso, frames: []).displayName == "[vdso]")
    let lib = Mapping(
      start: 0x1000, limit: 0x2000, fileOffset: 0x3000, path: "/usr/lib/libx.so", kind: .deletedFile
    )
    #expect(
      ResolvedLocation(address: 0x1010, mapping: lib, frames: []).displayName == "libx.so+0x3010")
    #expect(
      ResolvedLocation(address: 0x10, mapping: nil, frames: []).displayName == "[unknown] 0x10")
  }
}

@Suite struct MappingArithmeticTests {
  @Test func addressesOutsideTheMappingDoNotTrap() {
    let mapping = Mapping(
      start: 0x5000, limit: 0x6000, fileOffset: 0x1000, path: "/bin/x", kind: .file)
    #expect(mapping.fileOffset(of: 0x5010) == 0x1010)
    // Below the start: wraps instead of trapping, and the name still says where it is.
    _ = mapping.fileOffset(of: 0x10)
    #expect(
      ResolvedLocation(address: 0x10, mapping: mapping, frames: []).displayName.hasPrefix("x+0x"))
  }
}
