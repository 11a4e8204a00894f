import FlamespanExport
import FlamespanModel
import Testing

@Suite struct FoldedStacksTests {
  @Test func linesAreRootFirstWithThreadAndExpandedInlineFrames() {
    let lines = FoldedStacks.render(Fixture.profile()).split(
      separator: "\n", omittingEmptySubsequences: false)
    #expect(
      lines == [
        "demo-main;__libc_start_call_main;main;cold_function 10",
        // Two spans on the same stack and thread merge into one line: folded text has no labels.
        "demo-worker;__libc_start_call_main;main;hot_function;inlined_middle;inlined_leaf;[vdso];do_syscall_64 35",
        "",
      ])
  }

  @Test func separatorsAndLineBreaksInNamesCannotSplitRecords() {
    let weird = ResolvedLocation(
      address: 0x10, mapping: nil,
      frames: [SourceFrame(function: "operator;evil\nname"), SourceFrame(function: "")])
    let profile = Profile(
      samples: [
        ProfileSample(stack: [weird], pid: 1, tid: 2, threadName: "", count: 3),
        ProfileSample(stack: [weird], pid: 1, tid: 2, threadName: "", count: 0),
      ], periodNanos: 1, startTimeNanos: 0, durationNanos: 0)
    #expect(FoldedStacks.render(profile) == "[tid 2];[empty];operator:evil name 3\n")
  }

  @Test func outputIsSortedAndSumsCounts() {
    let profile = LargeProfile.make(distinctSamples: 2_000)
    let lines = FoldedStacks.render(profile).split(separator: "\n")
    #expect(lines == lines.sorted())
    let sum = lines.reduce(Int64(0)) { total, line in
      total + Int64(line.split(separator: " ").last!)!
    }
    #expect(sum == profile.totalCount)
    #expect(lines.allSatisfy { $0.split(separator: ";").count >= 10 })
  }
}
