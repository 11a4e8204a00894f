import CZlib

/// gzip compression through zlib, the container pprof files use.
public enum Gzip {
  /// Decompressed output larger than this is refused, so a tiny hostile file cannot exhaust memory.
  public static let maximumDecompressedSize = 1 << 30
  /// Profiles compress 5-15×; past 20× (and past the floor that small files get) a file is a bomb.
  public static let maximumExpansion = 20
  public static let minimumDecompressionLimit = 16 << 20

  /// The most `compressedSize` bytes may decompress to: 20× the input, at least 16 MiB, at most 1 GiB.
  public static func decompressionLimit(compressedSize: Int) -> Int {
    let (expanded, overflow) = compressedSize.multipliedReportingOverflow(by: maximumExpansion)
    return min(
      maximumDecompressedSize, max(minimumDecompressionLimit, overflow ? Int.max : expanded))
  }

  public static func isGzip(_ bytes: [UInt8]) -> Bool {
    bytes.count >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b
  }

  public static func compress(_ bytes: [UInt8]) throws(ExportError) -> [UInt8] {
    var stream = z_stream()
    // 15 + 16: the largest window, wrapped in a gzip header and trailer instead of zlib's.
    let initResult = deflateInit2_(
      &stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, zlibVersion(),
      Int32(MemoryLayout<z_stream>.size))
    guard initResult == Z_OK else {
      throw ExportError(
        code: .compressionFailed, message: "deflateInit2 failed: \(zlibMessage(initResult, stream))"
      )
    }
    defer { deflateEnd(&stream) }

    var output = [UInt8]()
    output.reserveCapacity(bytes.count / 4 + 64)
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    var result: Int32 = Z_OK
    var consumed = 0
    repeat {
      // zlib counts in 32-bit uInt, so feed very large inputs in slices.
      let sliceLength = min(bytes.count - consumed, Int(UInt32.max))
      let flush = consumed + sliceLength == bytes.count ? Z_FINISH : Z_NO_FLUSH
      result = bytes.withUnsafeBufferPointer { inputBuffer in
        chunk.withUnsafeMutableBufferPointer { chunkBuffer in
          // zlib never writes through next_in; its type lacks const only for old compilers.
          stream.next_in = inputBuffer.baseAddress.map {
            UnsafeMutablePointer(mutating: $0 + consumed)
          }
          stream.avail_in = uInt(sliceLength)
          var stepResult: Int32 = Z_OK
          repeat {
            stream.next_out = chunkBuffer.baseAddress
            stream.avail_out = uInt(chunkBuffer.count)
            stepResult = deflate(&stream, flush)
            if stepResult == Z_STREAM_ERROR { return stepResult }
            output.append(contentsOf: chunkBuffer[0..<(chunkBuffer.count - Int(stream.avail_out))])
          } while stream.avail_out == 0
          stream.next_in = nil
          stream.next_out = nil
          return stepResult
        }
      }
      consumed += sliceLength
    } while consumed < bytes.count && result != Z_STREAM_ERROR
    guard result == Z_STREAM_END else {
      throw ExportError(
        code: .compressionFailed, message: "deflate failed: \(zlibMessage(result, stream))")
    }
    return output
  }

  /// Accepts gzip or zlib framing (zlib detects which from the header). Output past `limit` (by default
  /// `decompressionLimit(compressedSize:)` of the input) is refused before it is all held in memory.
  public static func decompress(_ bytes: [UInt8], limit: Int? = nil) throws(ExportError) -> [UInt8]
  {
    let limit = limit ?? decompressionLimit(compressedSize: bytes.count)
    guard !bytes.isEmpty else {
      throw ExportError(code: .decompressionFailed, message: "no data")
    }
    var stream = z_stream()
    let initResult = inflateInit2_(
      &stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
    guard initResult == Z_OK else {
      throw ExportError(
        code: .decompressionFailed,
        message: "inflateInit2 failed: \(zlibMessage(initResult, stream))")
    }
    defer { inflateEnd(&stream) }
    guard bytes.count <= Int(UInt32.max) else {
      throw ExportError(code: .decompressionFailed, message: "compressed input larger than 4 GiB")
    }

    var output = [UInt8]()
    output.reserveCapacity(bytes.count * 4)
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    var tooLarge = false
    let result: Int32 = bytes.withUnsafeBufferPointer { inputBuffer in
      chunk.withUnsafeMutableBufferPointer { chunkBuffer in
        stream.next_in = inputBuffer.baseAddress.map { UnsafeMutablePointer(mutating: $0) }
        stream.avail_in = uInt(inputBuffer.count)
        var stepResult: Int32 = Z_OK
        repeat {
          stream.next_out = chunkBuffer.baseAddress
          stream.avail_out = uInt(chunkBuffer.count)
          stepResult = inflate(&stream, Z_NO_FLUSH)
          let produced = chunkBuffer.count - Int(stream.avail_out)
          output.append(contentsOf: chunkBuffer[0..<produced])
          if output.count > limit {
            tooLarge = true
            break
          }
          // Z_BUF_ERROR with input left over cannot happen with a fresh output chunk; with no input left
          // it means the stream ended early.
        } while stepResult == Z_OK && (stream.avail_in > 0 || stream.avail_out == 0)
        stream.next_in = nil
        stream.next_out = nil
        return stepResult
      }
    }
    if tooLarge {
      throw ExportError(
        code: .decompressionFailed,
        message:
          "decompressed data exceeds \(limit >> 20) MiB, the cap for a \(bytes.count)-byte file (\(maximumExpansion)× its size, at least \(minimumDecompressionLimit >> 20) MiB, at most \(maximumDecompressedSize >> 30) GiB): refused as a likely gzip bomb"
      )
    }
    switch result {
    case Z_STREAM_END:
      return output
    case Z_OK, Z_BUF_ERROR:
      throw ExportError(
        code: .decompressionFailed,
        message:
          "truncated gzip data: input ended after \(bytes.count) bytes before the end of the stream"
      )
    default:
      throw ExportError(
        code: .decompressionFailed, message: "corrupt gzip data: \(zlibMessage(result, stream))")
    }
  }

  private static func zlibMessage(_ code: Int32, _ stream: z_stream) -> String {
    if let message = stream.msg { return "\(String(cString: message)) (zlib \(code))" }
    return "zlib error \(code)"
  }
}
