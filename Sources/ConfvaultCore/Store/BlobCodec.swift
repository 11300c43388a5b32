import CZstd
import Foundation

/// How stored blobs are cut and compressed: chunks of at most 1 MiB, each zstd-compressed when that
/// saves space, so neither writing nor reading a blob holds more than a chunk in memory. Every store
/// keeps the same chunks.
public enum BlobCodec {
  public static let chunkSize = 1 << 20

  /// A chunk as stored: its bytes, zstd-compressed or as they are.
  public struct Chunk: Sendable {
    public var data: Data
    public var compressed: Bool

    public init(data: Data, compressed: Bool) {
      self.data = data
      self.compressed = compressed
    }
  }
  static let level: Int32 = 3

  /// A zstd compression context, reused for every chunk of a write: making one per call costs more
  /// than compressing a small file.
  public final class Compressor {
    private let context: OpaquePointer

    /// - Throws: `.internal` when zstd cannot allocate its context (out of memory).
    public init() throws {
      guard let context = ZSTD_createCCtx() else {
        throw OperationError(.internal, "zstd could not allocate a compression context (out of memory)")
      }
      self.context = context
    }

    deinit { ZSTD_freeCCtx(context) }

    /// The bytes to store for `chunk`, and whether they are compressed.
    public func encode(_ chunk: UnsafeRawBufferPointer) -> Chunk {
      BlobCodec.encode(chunk) { out, capacity in
        ZSTD_compressCCtx(context, out, capacity, chunk.baseAddress, chunk.count, BlobCodec.level)
      }
    }
  }

  private static func encode(
    _ chunk: UnsafeRawBufferPointer, compress: (UnsafeMutableRawPointer?, Int) -> Int
  ) -> Chunk {
    let bound = ZSTD_compressBound(chunk.count)
    var output = Data(count: bound)
    let written = output.withUnsafeMutableBytes { out in compress(out.baseAddress, bound) }
    // Compression pays only when it saves at least a sixteenth; otherwise the bytes are kept as they are.
    if ZSTD_isError(written) == 0 && written < chunk.count - chunk.count / 16 {
      output.count = written
      return Chunk(data: output, compressed: true)
    }
    return Chunk(data: Data(chunk), compressed: false)
  }

  /// The original bytes of a stored chunk.
  ///
  /// - Throws: `.internal` when the stored bytes are not a zstd frame of at most one chunk.
  public static func decode(_ stored: Data, compressed: Bool, into buffer: inout Data) throws {
    guard compressed else {
      buffer = stored
      return
    }
    let size = stored.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
    guard size != ZSTD_CONTENTSIZE_ERROR, size != ZSTD_CONTENTSIZE_UNKNOWN, size <= UInt64(chunkSize) else {
      throw OperationError(.internal, "a stored chunk is damaged (no valid zstd frame)", hint: .runCheck)
    }
    buffer.count = Int(size)
    let result = buffer.withUnsafeMutableBytes { out in
      stored.withUnsafeBytes { input in
        ZSTD_decompress(out.baseAddress, out.count, input.baseAddress, input.count)
      }
    }
    guard ZSTD_isError(result) == 0, result == Int(size) else {
      throw OperationError(.internal, "a stored chunk is damaged (zstd error)", hint: .runCheck)
    }
  }
}
