import FlamespanProcess
import FlamespanTestSupport
import Foundation
import Glibc
import Testing

/// ProcessMemory, which the CPython plug-in reads interpreters with: its reads and its typed errors.
@Suite struct CPythonProcessMemoryTests {
  @Test func readsAnotherAddressSpaceExactly() throws {
    let bytes: [UInt8] = (0..<64).map { UInt8($0 * 3 & 0xff) }
    let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: bytes.count)
    defer { buffer.deallocate() }
    _ = buffer.initialize(from: bytes)
    let address = UInt64(UInt(bitPattern: buffer.baseAddress!))
    let memory = ProcessMemory(pid: getpid())
    #expect(try memory.read(address, count: 64) == bytes)
    #expect(try memory.read(address + 5, count: 3) == [15, 18, 21])
    #expect(try memory.readUInt32(address) == 0x0906_0300)
    #expect(try memory.readUInt64(address + 8) == 0x2d2a_2724_211e_1b18)
    #expect(try memory.read(address, count: 0) == [])
  }

  @Test func anUnmappedRangeIsEFAULT() throws {
    let memory = ProcessMemory(pid: getpid())
    let error = try #require(throws: ProcessMemoryError.self) { try memory.read(0x10, count: 8) }
    #expect(error.kind == .unmapped)
    #expect(error.errno == EFAULT)
    #expect(error.description.contains("not mapped"))
    // A range whose start is mapped and whose end is not: a short read is no read.
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let mapped = try #require(
      mmap(nil, page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
    defer { munmap(mapped, page * 2) }
    munmap(mapped + page, page)
    let start = UInt64(UInt(bitPattern: mapped)) + UInt64(page) - 4
    let short = try #require(throws: ProcessMemoryError.self) { try memory.read(start, count: 8) }
    #expect(short.kind == .unmapped)
    #expect(try memory.read(start, count: 4) == [0, 0, 0, 0])
  }

  @Test func aProcessThatExitedIsESRCH() throws {
    // A child left unreaped: a zombie keeps its pid, so no other process can take it, but has no memory.
    var pid: pid_t = 0
    let arguments = ["/bin/true"]
    var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    defer { for argument in argv { free(argument) } }
    #expect(posix_spawn(&pid, "/bin/true", nil, nil, &argv, environ) == 0)
    defer {
      var status: Int32 = 0
      waitpid(pid, &status, 0)
    }
    var info = siginfo_t()
    // Wait for the exit without reaping it.
    #expect(waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) == 0)
    let error = try #require(throws: ProcessMemoryError.self) {
      try ProcessMemory(pid: pid).read(0x400000, count: 8)
    }
    #expect(error.kind == .processGone)
    #expect(error.errno == ESRCH)
    #expect(error.description.contains("exited"))
  }

  @Test func permissionDeniedSaysWhatToDo() {
    let error = ProcessMemoryError(
      kind: .init(errno: EPERM), pid: 42, address: 0x1000, count: 8, errno: EPERM)
    #expect(error.kind == .permissionDenied)
    #expect(error.description.contains("run as root"))
    #expect(error.description.contains("CAP_SYS_PTRACE"))
  }
}
