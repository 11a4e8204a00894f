/// A CPython version as `Py_Version` (3.11+) encodes it: PY_VERSION_HEX, 0x030B02F0 for 3.11.2 final.
struct CPythonVersion: Hashable, Sendable, CustomStringConvertible {
  var major: Int
  var minor: Int
  var micro: Int
  /// 0xA alpha, 0xB beta, 0xC release candidate, 0xF final.
  var releaseLevel: Int
  var serial: Int

  init(hex: UInt32) {
    major = Int(hex >> 24 & 0xff)
    minor = Int(hex >> 16 & 0xff)
    micro = Int(hex >> 8 & 0xff)
    releaseLevel = Int(hex >> 4 & 0xf)
    serial = Int(hex & 0xf)
  }

  init(major: Int, minor: Int, micro: Int, releaseLevel: Int = 0xf, serial: Int = 0) {
    self.major = major
    self.minor = minor
    self.micro = micro
    self.releaseLevel = releaseLevel
    self.serial = serial
  }

  var hex: UInt32 {
    UInt32(major & 0xff) << 24 | UInt32(minor & 0xff) << 16 | UInt32(micro & 0xff) << 8
      | UInt32(releaseLevel & 0xf) << 4 | UInt32(serial & 0xf)
  }

  var description: String {
    let level: String
    switch releaseLevel {
    case 0xa: level = "a\(serial)"
    case 0xb: level = "b\(serial)"
    case 0xc: level = "rc\(serial)"
    default: level = ""
    }
    return "\(major).\(minor).\(micro)\(level)"
  }

  /// A version no CPython has: what a file that is not `Py_Version` (or garbage) decodes to.
  var isPlausible: Bool { major == 3 && minor >= 11 && minor < 64 && releaseLevel >= 0xa }
}
