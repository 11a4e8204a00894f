import CFlamespanABI
import FlamespanModel
import Glibc

/// A `CPythonWalkLayout` as the sampler's `python_processes` map holds it (`struct fs_python_process`),
/// checked first: the BPF walk reads each frame's head once and picks fields from that copy, so a layout
/// whose fields fall outside it could only ever fail.
enum InterpreterLayoutEntry {
  /// Entries of `python_processes` in profile.bpf.c.
  static let capacity = 4096
  /// Bytes of each frame the walk copies (PYTHON_FRAME_WINDOW in profile.bpf.c); CPython 3.11 to 3.13
  /// keep every field it follows in the first 72 bytes of `_PyInterpreterFrame`.
  static let frameWindow = 72

  static func make(_ layout: CPythonWalkLayout, pid: Int32) throws(BPFError) -> fs_python_process {
    func invalid(_ problem: String) -> BPFError {
      BPFError(
        .setConfiguration, errno: EINVAL,
        context: "cannot walk the Python frames of pid \(pid): \(problem)")
    }
    let noOffset = UInt16(FS_PYTHON_NO_OFFSET)
    let viaCFrame = layout.threadStateCFrame != nil && layout.cframeCurrentFrame != nil
    let direct = layout.threadStateCurrentFrame != nil
    guard viaCFrame != direct, layout.threadStateCFrame == nil || layout.cframeCurrentFrame != nil
    else {
      throw invalid(
        "the layout must reach the current frame either through the thread state's cframe "
          + "(CPython 3.11, 3.12) or directly (3.13+), not both or neither")
    }
    let offsets = [
      layout.threadStateCFrame, layout.cframeCurrentFrame, layout.threadStateCurrentFrame,
      layout.codeStamp,
    ]
    guard !offsets.contains(noOffset) else {
      throw invalid("offset \(noOffset) is reserved for \"absent\" (FS_PYTHON_NO_OFFSET)")
    }
    let words = [
      ("code", layout.frameCode), ("previous", layout.framePrevious),
      ("instruction", layout.frameInstruction),
    ]
    let bytes = [("owner", layout.frameOwner), ("is_entry", layout.frameIsEntry ?? 0)]
    for (name, offset) in words where Int(offset) + 8 > frameWindow {
      throw invalid(
        "the frame's \(name) field at offset \(offset) lies outside the \(frameWindow) bytes the sampler reads"
      )
    }
    for (name, offset) in bytes where Int(offset) + 1 > frameWindow {
      throw invalid(
        "the frame's \(name) field at offset \(offset) lies outside the \(frameWindow) bytes the sampler reads"
      )
    }
    guard layout.tsdStride > 0, layout.tsdKeyLimit > 0 else {
      throw invalid("the thread-specific data layout has no slots (stride or key limit 0)")
    }
    var entry = fs_python_process()
    entry.tss_address = layout.tssAddress
    entry.tsd_data_offset = layout.tsdDataOffset
    entry.tsd_stride = layout.tsdStride
    entry.tsd_key_limit = layout.tsdKeyLimit
    entry.tstate_cframe = layout.threadStateCFrame ?? noOffset
    entry.cframe_current_frame = layout.cframeCurrentFrame ?? noOffset
    entry.tstate_current_frame = layout.threadStateCurrentFrame ?? noOffset
    entry.frame_code = layout.frameCode
    entry.frame_previous = layout.framePrevious
    entry.frame_instruction = layout.frameInstruction
    entry.frame_owner = layout.frameOwner
    entry.frame_is_entry = layout.frameIsEntry ?? noOffset
    entry.code_stamp = layout.codeStamp
    return entry
  }
}
