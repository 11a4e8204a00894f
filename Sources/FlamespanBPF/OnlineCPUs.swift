import Foundation

/// The CPUs the kernel lists as online, from `/sys/devices/system/cpu/online` ("0-3,6").
public enum OnlineCPUs {
  public static func read(from path: String = "/sys/devices/system/cpu/online") -> [Int] {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
    return parse(text)
  }

  public static func parse(_ text: String) -> [Int] {
    var cpus: [Int] = []
    for part in text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",") {
      let bounds = part.split(separator: "-").compactMap { Int($0) }
      switch bounds.count {
      case 1: cpus.append(bounds[0])
      case 2 where bounds[0] <= bounds[1]: cpus.append(contentsOf: bounds[0]...bounds[1])
      default: continue
      }
    }
    return cpus
  }

  /// Every CPU the kernel could bring up (`possible`), for sizing per-CPU reads.
  public static func possibleCount() -> Int {
    max(read(from: "/sys/devices/system/cpu/possible").count, 1)
  }
}
