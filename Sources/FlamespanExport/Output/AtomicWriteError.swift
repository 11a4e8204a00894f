import FlamespanModel

extension ExportError {
  /// A failed `AtomicFile` write or probe, in the export layer's categories and words: a directory that
  /// takes no new file is `notWritable`, anything after that a `writeFailed` of `path`.
  init(_ failure: AtomicFileError, writing path: String, byteCount: Int = 0) {
    switch failure.step {
    case "create":
      self.init(
        code: .notWritable, path: AtomicFile.directory(of: path), errno: failure.errno,
        message: "cannot create a file in this directory")
    case "write":
      self.init(
        code: .writeFailed, path: path, errno: failure.errno,
        message: "cannot write \(byteCount) bytes")
    case "flush":
      self.init(
        code: .writeFailed, path: path, errno: failure.errno, message: "cannot flush to disk")
    case "close":
      self.init(
        code: .writeFailed, path: path, errno: failure.errno,
        message: "cannot close the temporary file")
    default:
      self.init(
        code: .writeFailed, path: path, errno: failure.errno,
        message: "cannot move the finished file into place")
    }
  }
}
