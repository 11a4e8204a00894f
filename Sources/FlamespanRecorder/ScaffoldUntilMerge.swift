// TEMPORARY compile scaffold until r-pybpf merges (it brings the real methods); deleted at the merge.
import FlamespanBPF
import FlamespanModel

extension CPUSampler {
  func publishInterpreter(pid: Int32, layout: CPythonWalkLayout) throws(BPFError) {}
  func withdrawInterpreter(pid: Int32) {}
}
