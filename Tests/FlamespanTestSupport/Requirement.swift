import Foundation
import Testing

/// Something a test needs from the machine: privileges, an installed tool, a file, or any other check.
public struct Need: Sendable {
  /// nil when the need is met, else why not and what to do about it.
  let problem: @Sendable () -> String?

  /// Any check of the machine: `problem` returns nil when it passes, else why the test cannot run.
  public static func check(_ problem: @escaping @Sendable () -> String?) -> Need {
    Need(problem: problem)
  }

  /// Root, for what only root may do (drop to another user, read other processes' memory).
  public static let root = Need {
    geteuid() == 0 ? nil : "needs root; run the tests with sudo to include it"
  }

  /// Loading BPF programs and attaching them to perf events.
  public static let bpf = Need {
    geteuid() == 0
      ? nil : "needs root (or CAP_BPF+CAP_PERFMON) to load BPF programs; run the tests as root"
  }

  /// An external program on PATH (or in /usr/sbin, /sbin).
  public static func tool(_ name: String) -> Need {
    Need {
      TestEnvironment.which(name) == nil
        ? "\(name) is not installed (scripts/setup.sh installs it)" : nil
    }
  }

  /// One of several names for the same program (distributions name chromium differently).
  public static func tool(anyOf names: [String]) -> Need {
    Need {
      names.contains { TestEnvironment.which($0) != nil }
        ? nil
        : "none of \(names.joined(separator: ", ")) is installed (scripts/setup.sh installs it)"
    }
  }

  /// A file the machine should have, such as the system's libc.
  public static func file(_ path: String) -> Need {
    Need { FileManager.default.fileExists(atPath: path) ? nil : "\(path) does not exist" }
  }
}

/// `.requires(…)`: runs the test only where every need is met. Where one is missing, the test is skipped
/// with the reason shown by Swift Testing; under CI=true, where the machine is set up for every test, it
/// fails with the reason instead, so that a missing tool can never turn a CI run green by skipping.
public struct RequirementTrait: TestTrait, SuiteTrait {
  let needs: [Need]
  let sourceLocation: SourceLocation

  public func prepare(for test: Test) async throws {
    let problems = needs.compactMap { $0.problem() }
    guard !problems.isEmpty else { return }
    let reason = problems.joined(separator: "; ")
    if TestEnvironment.isCI {
      // An error thrown here is recorded as an issue of the test, which then does not run.
      throw RequirementMissing(test: test.name, reason: reason)
    }
    // A disabled condition is how Swift Testing skips with a comment it prints.
    try await ConditionTrait.disabled(Comment(rawValue: reason), sourceLocation: sourceLocation)
      .prepare(for: test)
  }
}

extension Trait where Self == RequirementTrait {
  /// Runs the test or suite only where every need is met; see `RequirementTrait`.
  public static func requires(
    _ needs: Need..., sourceLocation: SourceLocation = #_sourceLocation
  ) -> Self {
    RequirementTrait(needs: needs, sourceLocation: sourceLocation)
  }
}

/// Why a test could not run under CI=true.
public struct RequirementMissing: Error, CustomStringConvertible {
  public var test: String
  public var reason: String
  public var description: String {
    "CI=true but \(test) cannot run: \(reason). CI must provide it (scripts/setup.sh, run as root)."
  }
}
