import CCompression
import CZstd
import Foundation

/// Undoes one compression layer of a stream, verifying its checksum.
///
/// libarchive's own filters stop reading at the tar's end marker and never check the gzip trailer,
/// and they decompress layer after layer (a gzip quine never ends); so the reader decompresses
/// exactly one layer itself and hands libarchive plain tar.
protocol StreamDecoder: AnyObject {
  /// Decodes from `input` into `output`.
  ///
  /// - Returns: how many input bytes were used, how many output bytes were made, and whether the
  ///   compressed stream ended (after its checksum was verified).
  /// - Throws: `ArchiveRefusal` for corrupt data or a checksum that does not match.
  func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws
    -> (consumed: Int, produced: Int, ended: Bool)
}

extension Compression {
  /// The compression whose magic number `prefix` starts with; nil when it starts with none.
  static func detect<Bytes: Collection<UInt8>>(_ prefix: Bytes) -> Compression? {
    let bytes = Array(prefix.prefix(6))
    if bytes.starts(with: [0x1F, 0x8B]) { return .gzip }
    if bytes.starts(with: [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]) { return .xz }
    if bytes.starts(with: [0x28, 0xB5, 0x2F, 0xFD]) { return .zstd }
    if bytes.count >= 4, bytes.starts(with: Array("BZh".utf8)), (0x31...0x39).contains(bytes[3]) { return .bzip2 }
    return nil
  }

  /// A decoder for this compression; nil for none.
  func decoder() throws -> (any StreamDecoder)? {
    switch self {
    case .gzip: return try GzipDecoder()
    case .xz: return try XzDecoder()
    case .zstd: return try ZstdDecoder()
    case .bzip2: return try Bzip2Decoder()
    case .none: return nil
    }
  }
}

private func corrupt(_ compression: Compression, _ detail: String) -> ArchiveRefusal {
  ArchiveRefusal(entry: nil, rule: .corrupt, detail: "\(compression.rawValue): \(detail)")
}

/// gzip through zlib, which checks the trailer's CRC-32 and length when the stream ends.
private final class GzipDecoder: StreamDecoder {
  private var stream = z_stream()

  init() throws {
    // 15 + 16: a gzip wrapper only (not zlib, not raw deflate).
    guard inflateInit2_(&stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
      throw OperationError(.internal, "zlib could not start a decoder (out of memory)")
    }
  }

  deinit { inflateEnd(&stream) }

  func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws
    -> (consumed: Int, produced: Int, ended: Bool)
  {
    stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: UInt8.self))
    stream.avail_in = UInt32(input.count)
    stream.next_out = output.baseAddress?.assumingMemoryBound(to: UInt8.self)
    stream.avail_out = UInt32(output.count)
    let result = inflate(&stream, Z_NO_FLUSH)
    let consumed = input.count - Int(stream.avail_in)
    let produced = output.count - Int(stream.avail_out)
    switch result {
    case Z_OK, Z_BUF_ERROR:
      return (consumed, produced, false)
    case Z_STREAM_END:
      return (consumed, produced, true)
    default:
      let message = stream.msg.map { String(cString: $0) } ?? "error \(result)"
      // zlib's own words for a trailer that does not match the data.
      if message == "incorrect data check" || message == "incorrect length check" {
        throw ArchiveRefusal(
          entry: nil, rule: .compressionChecksum,
          detail:
            "gzip \(message == "incorrect data check" ? "CRC-32" : "length") in the trailer does not match the data")
      }
      throw corrupt(.gzip, message)
    }
  }
}

/// xz through liblzma, which verifies each block's check (CRC-32, CRC-64 or SHA-256).
private final class XzDecoder: StreamDecoder {
  private var stream = lzma_stream()
  /// A bound on the dictionary a hostile stream may ask for.
  static let memoryLimit: UInt64 = 64 << 20

  init() throws {
    guard lzma_stream_decoder(&stream, XzDecoder.memoryLimit, 0) == LZMA_OK else {
      throw OperationError(.internal, "liblzma could not start a decoder (out of memory)")
    }
  }

  deinit { lzma_end(&stream) }

  func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws
    -> (consumed: Int, produced: Int, ended: Bool)
  {
    stream.next_in = input.baseAddress?.assumingMemoryBound(to: UInt8.self)
    stream.avail_in = input.count
    stream.next_out = output.baseAddress?.assumingMemoryBound(to: UInt8.self)
    stream.avail_out = output.count
    let result = lzma_code(&stream, input.isEmpty ? LZMA_FINISH : LZMA_RUN)
    let consumed = input.count - stream.avail_in
    let produced = output.count - stream.avail_out
    switch result {
    case LZMA_OK: return (consumed, produced, false)
    case LZMA_BUF_ERROR where produced > 0 || consumed > 0: return (consumed, produced, false)
    case LZMA_STREAM_END: return (consumed, produced, true)
    case LZMA_DATA_ERROR:
      throw ArchiveRefusal(
        entry: nil, rule: .compressionChecksum, detail: "xz: the data or its integrity check is damaged")
    case LZMA_MEMLIMIT_ERROR:
      throw corrupt(.xz, "needs more than \(XzDecoder.memoryLimit >> 20) MiB to decompress")
    case LZMA_BUF_ERROR: throw corrupt(.xz, "truncated xz input")
    default: throw corrupt(.xz, "not a valid xz stream (liblzma error \(result.rawValue))")
    }
  }
}

/// zstd through libzstd, which verifies a frame's content checksum when it carries one.
private final class ZstdDecoder: StreamDecoder {
  private let stream: OpaquePointer
  /// A bound on the window a hostile frame may ask for: 2^26 bytes.
  static let windowLogMax: Int32 = 26

  init() throws {
    guard let stream = ZSTD_createDStream() else {
      throw OperationError(.internal, "libzstd could not start a decoder (out of memory)")
    }
    self.stream = stream
    ZSTD_DCtx_setParameter(stream, ZSTD_d_windowLogMax, ZstdDecoder.windowLogMax)
  }

  deinit { ZSTD_freeDStream(stream) }

  func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws
    -> (consumed: Int, produced: Int, ended: Bool)
  {
    var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
    var outBuffer = ZSTD_outBuffer(dst: output.baseAddress, size: output.count, pos: 0)
    let result = ZSTD_decompressStream(stream, &outBuffer, &inBuffer)
    if ZSTD_isError(result) != 0 {
      let code = ZSTD_getErrorCode(result)
      if code == ZSTD_error_checksum_wrong {
        throw ArchiveRefusal(
          entry: nil, rule: .compressionChecksum, detail: "zstd content checksum does not match the data")
      }
      throw corrupt(.zstd, String(cString: ZSTD_getErrorName(result)))
    }
    // 0: a frame is complete and fully flushed.
    return (inBuffer.pos, outBuffer.pos, result == 0)
  }
}

/// bzip2 through libbz2, which verifies each block's and the stream's CRC.
private final class Bzip2Decoder: StreamDecoder {
  private var stream = bz_stream()

  init() throws {
    guard BZ2_bzDecompressInit(&stream, 0, 0) == BZ_OK else {
      throw OperationError(.internal, "libbz2 could not start a decoder (out of memory)")
    }
  }

  deinit { BZ2_bzDecompressEnd(&stream) }

  func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws
    -> (consumed: Int, produced: Int, ended: Bool)
  {
    stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: CChar.self))
    stream.avail_in = UInt32(input.count)
    stream.next_out = output.baseAddress?.assumingMemoryBound(to: CChar.self)
    stream.avail_out = UInt32(output.count)
    let result = BZ2_bzDecompress(&stream)
    let consumed = input.count - Int(stream.avail_in)
    let produced = output.count - Int(stream.avail_out)
    switch result {
    case BZ_OK: return (consumed, produced, false)
    case BZ_STREAM_END: return (consumed, produced, true)
    case BZ_DATA_ERROR:
      throw ArchiveRefusal(
        entry: nil, rule: .compressionChecksum, detail: "bzip2: a block's CRC does not match its data")
    default: throw corrupt(.bzip2, "not a valid bzip2 stream (libbz2 error \(result))")
    }
  }
}
