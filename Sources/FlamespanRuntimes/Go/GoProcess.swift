import FlamespanModel

/// The Go runtime's view of one process: the Go binaries it maps, with where each mapping's code lies
/// at link time.
final class GoProcess: RuntimeProcess, @unchecked Sendable {
  struct Image {
    var mapping: Mapping
    var binary: GoBinary
    /// The link-time address of `mapping.start`.
    var linkStart: UInt64

    /// `address` (inside `mapping`) at link time.
    func linkAddress(_ address: UInt64) -> UInt64 { address &- mapping.start &+ linkStart }
  }

  let pid: Int32
  let images: [Image]

  init(pid: Int32, images: [Image]) {
    self.pid = pid
    self.images = images
  }

  var runtimeName: String { "go" }

  /// The image and link-time pc of `pc` when it lies in Go text of this process.
  private func locate(_ pc: UInt64) -> (image: Image, linkPC: UInt64)? {
    for image in images where image.mapping.contains(pc) {
      let linkPC = image.linkAddress(pc)
      if image.binary.table.textRange.contains(linkPC) { return (image, linkPC) }
    }
    return nil
  }

  func owns(pc: UInt64, mapping: Mapping?) -> Bool { locate(pc) != nil }

  func step(_ frame: FrameRegisters, memory: StackMemory) -> RuntimeStep {
    guard let (image, linkPC) = locate(frame.lookupPC) else {
      return .stop(
        .corruptTables, detail: "0x\(String(frame.lookupPC, radix: 16)) is not in Go text")
    }
    return GoStep.step(frame, linkPC: linkPC, table: image.binary.table, memory: memory)
  }

  func symbolize(address: UInt64, mapping: Mapping?) -> RuntimeSymbol? {
    guard let (image, linkPC) = locate(address) else { return nil }
    let table = image.binary.table
    guard let function = try? table.function(at: linkPC) else { return nil }
    // Inlined calls from the inline tree; corrupt tree data leaves the function alone, as before.
    if let frames = try? table.frames(of: function, at: linkPC, funcData: image.binary.funcData) {
      return RuntimeSymbol(frames: frames, frameType: .go, isJIT: false)
    }
    let position = try? table.sourcePosition(of: function, at: linkPC)
    let frame = SourceFrame(
      function: function.name, file: position?.file, line: position?.line ?? 0)
    return RuntimeSymbol(frames: [frame], frameType: .go, isJIT: false)
  }
}
