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
