import CZstd
import Foundation

/// How stored blobs are cut and compressed: chunks of at most 1 MiB, each zstd-compressed when that
/// saves space, so neither writing nor reading a blob holds more than a chunk in memory.
enum BlobCodec {
  static let chunkSize = 1 << 20
  private static let level: Int32 = 3

  /// The bytes to store for `chunk`, and whether they are compressed.
  static func encode(_ chunk: UnsafeRawBufferPointer) -> (data: Data, compressed: Bool) {
    let bound = ZSTD_compressBound(chunk.count)
    var output = Data(count: bound)
    let written = output.withUnsafeMutableBytes { out in
      ZSTD_compress(out.baseAddress, bound, chunk.baseAddress, chunk.count, level)
    }
    // Compression pays only when it saves at least a sixteenth; otherwise the bytes are kept as they are.
    if ZSTD_isError(written) == 0 && written < chunk.count - chunk.count / 16 {
      output.count = written
      return (output, true)
    }
    return (Data(chunk), false)
  }

  /// The original bytes of a stored chunk.
  ///
  /// - Throws: `OperationError` when the stored bytes do not decompress to `expectedSize` or less.
  static func decode(_ stored: Data, compressed: Bool, into buffer: inout Data) throws {
    guard compressed else {
      buffer = stored
      return
    }
    let size = stored.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
    guard size != ZSTD_CONTENTSIZE_ERROR, size != ZSTD_CONTENTSIZE_UNKNOWN, size <= UInt64(chunkSize) else {
      throw OperationError(.operationFailed, "a stored chunk is damaged (no valid zstd frame); run `confvault check`")
    }
    buffer.count = Int(size)
    let result = buffer.withUnsafeMutableBytes { out in
      stored.withUnsafeBytes { input in
        ZSTD_decompress(out.baseAddress, out.count, input.baseAddress, input.count)
      }
    }
    guard ZSTD_isError(result) == 0, result == Int(size) else {
      throw OperationError(.operationFailed, "a stored chunk is damaged (zstd error); run `confvault check`")
    }
  }
}
