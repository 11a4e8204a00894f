import Foundation

/// Checks up front for what loading BPF needs, so the user gets one clear sentence instead of a verifier
/// dump when they forgot sudo.
public enum Privileges {
  private static let capSysAdmin = 21
  private static let capPerfmon = 38
  private static let capBPF = 39

  /// nil when this process may load BPF programs and open perf events; otherwise what is missing.
  public static func missingForProfiling() -> String? {
    if geteuid() == 0 { return nil }
    guard let effective = effectiveCapabilities() else {
      return "cannot read capabilities from /proc/self/status"
    }
    let has = { (cap: Int) in effective & (UInt64(1) << UInt64(cap)) != 0 }
    if has(capSysAdmin) || (has(capBPF) && has(capPerfmon)) { return nil }
    var missing: [String] = []
    if !has(capBPF) { missing.append("CAP_BPF") }
    if !has(capPerfmon) { missing.append("CAP_PERFMON") }
    return "needs root or CAP_BPF+CAP_PERFMON (missing \(missing.joined(separator: "+")))"
  }

  static func effectiveCapabilities() -> UInt64? {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else {
      return nil
    }
    for line in status.split(separator: "\n") where line.hasPrefix("CapEff:") {
      let hex = line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces)
      return UInt64(hex, radix: 16)
    }
    return nil
  }
}
