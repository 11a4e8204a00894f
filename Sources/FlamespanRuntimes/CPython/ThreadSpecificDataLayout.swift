import FlamespanELF

/// How glibc keeps a thread's pthread TSD values: key k's data word at fs base + dataOffset + k * stride,
/// for keys below keyLimit (the block inside `struct pthread`; higher keys live in separately allocated
/// blocks). Whatever its source, a layout is used only once a live thread state confirms it.
struct ThreadSpecificDataLayout: Hashable, Sendable {
  var dataOffset: Int64
  var stride: UInt32
  var keyLimit: UInt32

  /// glibc 2.36 x86-64: `struct pthread_key_data` is 16 bytes (seq, data), the first block holds 32
  /// keys (PTHREAD_KEY_2NDLEVEL_SIZE) and starts 0x310 into the thread's descriptor, so key 0's data
  /// word is at 0x318.
  static let glibcX8664 = ThreadSpecificDataLayout(dataOffset: 0x318, stride: 16, keyLimit: 32)

  /// The layout that x86-64 glibc's `pthread_getspecific` uses, read off its first instructions:
  ///
  ///     cmp  $LIMIT-1, %edi          83 ff imm8
  ///     ja   <second-level block>
  ///     mov  %edi, %eax
  ///     add  $BASE, %rax             48 83 c0 imm8
  ///     shl  $SHIFT, %rax            48 c1 e0 imm8
  ///     add  %fs:0x10, %rax          64 48 03 04 25 10 00 00 00   (the thread's own descriptor)
  ///     mov  DISP(%rax), %reg        48 8b modrm(disp8, base rax) imm8
  ///
  /// data offset = BASE << SHIFT + DISP. Nil when the code is not this sequence (another libc, another
  /// compiler's output).
  static func decode(pthreadGetspecific code: [UInt8]) -> ThreadSpecificDataLayout? {
    var cursor = 0
    func find(_ pattern: [UInt8?]) -> [UInt8]? {
      guard pattern.count <= code.count else { return nil }
      var start = cursor
      while start + pattern.count <= code.count {
        let window = Array(code[start..<start + pattern.count])
        if zip(window, pattern).allSatisfy({ $1 == nil || $0 == $1 }) {
          cursor = start + pattern.count
          return window
        }
        start += 1
      }
      return nil
    }
    guard let compare = find([0x83, 0xff, nil]),
      let add = find([0x48, 0x83, 0xc0, nil]),
      let shift = find([0x48, 0xc1, 0xe0, nil]),
      find([0x64, 0x48, 0x03, 0x04, 0x25, 0x10, 0x00, 0x00, 0x00]) != nil,
      let load = find([0x48, 0x8b, nil, nil]),
      load[2] & 0xc7 == 0x40,  // mod 01 (8-bit displacement), r/m 000 (%rax)
      shift[3] < 8
    else { return nil }
    let base = Int64(Int8(bitPattern: add[3]))
    let displacement = Int64(Int8(bitPattern: load[3]))
    let stride = UInt32(1) << UInt32(shift[3])
    return ThreadSpecificDataLayout(
      dataOffset: base * Int64(stride) + displacement, stride: stride,
      keyLimit: UInt32(compare[2]) + 1)
  }

  /// Bytes of `pthread_getspecific` decoded: the sequence lies in its first few instructions.
  static let decodedCodeBytes = 64

  /// The layout decoded from the `pthread_getspecific` that the ELF file read through `read` defines.
  static func decode(libraryReadBy read: @escaping (UInt64, Int) -> [UInt8]?)
    -> ThreadSpecificDataLayout?
  {
    guard let elf = try? ELFFile(read: read),
      let symbol = DynamicSymbolLookup(elf: elf, read: read).lookup("pthread_getspecific"),
      let offset = CPythonBinary.fileOffset(of: symbol.value, in: elf),
      let code = read(offset, decodedCodeBytes)
    else { return nil }
    return decode(pthreadGetspecific: code)
  }
}
