import FlamespanTestSupport
import Foundation
import Testing

/// `flamespan record --unwind dwarf` on the samples built without frame pointers: the hot functions'
/// stacks must reach `main` (and the process's entry point) in at least 99 % of samples, with the exact
/// caller chain of each sample's source. Serialized: each one wants the CPU to itself.
@Suite(.serialized) struct DwarfUnwindRecordTests {
  static let samples = TestEnvironment.sharedSamples

  /// Records `name` for 3 s in DWARF mode and returns the folded profile of its own samples.
  func record(_ name: String, extraArguments: [String] = []) throws -> FoldedProfile {
    let binary = try Self.samples.get().appendingPathComponent(name).path
    guard FileManager.default.isExecutableFile(atPath: binary) else {
      // The Makefile skips only the Rust sample (without rustc), and that test requires rustc.
      throw TestFailure("\(name) was not built (samples/Makefile)")
    }
    let out = try TestEnvironment.temporaryDirectory("dwarf-\(name)")
    let folded = out.appendingPathComponent("profile.folded")
    let result = try Run.command(
      [
        TestEnvironment.flamespanBinary, "record", "--unwind", "dwarf", "-F", "199", "-q", "-o",
        folded.path,
      ] + extraArguments + ["--", binary, "3"])
    #expect(result.status == 0, "stderr: \(result.stderr)")
    #expect(result.stderr.contains("Dwarf unwinding:"), "\(result.stderr)")
    var profile = try FoldedProfile(contentsOf: folded)
    profile.stacks = profile.stacks.filter { $0.frames.first == name }
    return profile
  }

  /// Checks the 99 % rule: of the samples `isHot` selects, how many are complete. Other suites may run
  /// at the same time on this 2-CPU machine, so the floor on hot samples is low; the rule is a ratio.
  func expectComplete(
    _ profile: FoldedProfile, isHot: ([String]) -> Bool, isComplete: ([String]) -> Bool,
    sourceLocation: SourceLocation = #_sourceLocation
  ) {
    let hot = profile.count(where: isHot)
    let complete = profile.count { isHot($0) && isComplete($0) }
    #expect(hot >= 50, "only \(hot) hot samples", sourceLocation: sourceLocation)
    #expect(
      Double(complete) >= 0.99 * Double(hot), "\(complete) of \(hot) hot samples reach main",
      sourceLocation: sourceLocation)
  }

  static func contains(_ frames: [String], run: [String]) -> Bool {
    guard frames.count >= run.count else { return false }
    return (0...(frames.count - run.count)).contains { Array(frames[$0..<($0 + run.count)]) == run }
  }

  @Test(.requires(.bpf)) func cppTemplatesReachMain() throws {
    let profile = try record("nofp_templates")
    let mixers = ["Mixer<3>", "Mixer<1>"]
    expectComplete(
      profile,
      isHot: { frames in
        frames.contains { frame in mixers.contains { frame.hasPrefix("\($0)::mix(") } }
      },
      isComplete: { $0.count > 4 && $0[1] == "_start" && $0.contains("main") })
    let vector = "std::vector<unsigned long, std::allocator<unsigned long>> const&"
    let runFor =
      "run_for(double, std::function<unsigned long (unsigned long)> const&, std::function<unsigned long (unsigned long)> const&)"
    for rounds in [3, 1] {
      let chain = profile.count { frames in
        Self.contains(frames, run: ["main", runFor])
          && Self.contains(
            frames,
            run: [
              "Pipeline<Mixer<\(rounds)>>::run_batch(unsigned long)",
              "Mixer<\(rounds)>::mix(unsigned long, \(vector))",
            ])
      }
      // A share (at least 5%, as 30 of the ~600 samples of a quiet run), not a count: how many samples
      // the run gets depends on what else the machine runs.
      #expect(
        chain * 20 >= profile.total,
        "Mixer<\(rounds)>: \(chain) samples with the exact chain")
    }
  }

  @Test(.requires(.bpf, .tool("rustc"))) func rustReachesTheCratesMainThroughStdsRuntime() throws {
    let profile = try record("nofp_rust")
    expectComplete(
      profile, isHot: { $0.contains("nofp_rust::mix") },
      isComplete: { frames in
        frames.count > 4 && frames[1] == "_start" && frames.contains("main")
          && frames.contains("std::rt::lang_start_internal") && frames.contains("nofp_rust::main")
      })
    for checksum in ["nofp_rust::checksum_heavy", "nofp_rust::checksum_light"] {
      let chain = profile.count {
        Self.contains(
          $0, run: ["nofp_rust::main", "nofp_rust::run_for", checksum, "nofp_rust::mix"])
      }
      // A share (at least 5%, as 30 of the ~600 samples of a quiet run), not a count: how many samples
      // the run gets depends on what else the machine runs.
      #expect(
        chain * 20 >= profile.total,
        "\(checksum): \(chain) samples with the exact chain")
    }
  }

  @Test(.requires(.bpf)) func qsortCallbackStacksPassThroughLibcToMain() throws {
    let profile = try record("qsort_callback")
    expectComplete(
      profile, isHot: { $0.last == "compare_keys" },
      isComplete: { $0.count > 4 && $0[1] == "_start" && $0.contains("main") })
    // main → sort_rounds → libc's qsort/msort frames only → compare_keys.
    let exact = profile.count { frames in
      guard let sort = frames.firstIndex(of: "sort_rounds"), sort > 0, frames[sort - 1] == "main",
        frames.last == "compare_keys", frames.count > sort + 2
      else { return false }
      let libc = frames[(sort + 1)..<(frames.count - 1)]
      return libc.allSatisfy { ["qsort", "qsort_r", "msort_with_tmp"].contains($0) }
        && libc.contains("msort_with_tmp")
    }
    let hot = profile.count { $0.last == "compare_keys" }
    #expect(Double(exact) >= 0.99 * Double(hot), "\(exact) of \(hot) with the exact libc chain")
  }

  @Test(.requires(.bpf)) func aCopyTooShortForTheStackIsMarkedTruncatedNeverCompleted() throws {
    let profile = try record("qsort_callback", extraArguments: ["--stack-copy-bytes", "256"])
    let marker = "[user stack truncated: deeper than the 256-byte copy]"
    let hot = profile.count { $0.last == "compare_keys" || $0.contains("compare_keys") }
    let marked = profile.count { $0.contains(marker) }
    #expect(hot >= 50, "only \(hot) hot samples")
    // msort's recursion needs far more than 256 bytes: nearly every stack ends at the marker.
    #expect(Double(marked) >= 0.9 * Double(profile.total), "\(marked) of \(profile.total) marked")
    // A truncated stack never pretends to be complete: the marker takes the place of the missing
    // callers (the root end), and the process's entry point is never under it.
    #expect(profile.count { $0.contains(marker) && $0.contains("_start") } == 0)
    #expect(profile.count { $0.contains(marker) && $0[1] != marker } == 0)
  }
}
