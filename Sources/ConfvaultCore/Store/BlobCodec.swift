import CZstd
import Foundation
import Synchronization

/// How stored blobs are cut and compressed: chunks of at most 1 MiB, each zstd-compressed when that
/// saves space, so neither writing nor reading a blob holds more than a chunk in memory. Every store
/// keeps the same chunks.
///
/// A blob of one chunk may instead be a delta: zstd-compressed with the bytes of another one-chunk
/// blob, its base, as the dictionary, so a file with one value changed costs the change, not the file.
public enum BlobCodec {
  public static let chunkSize = 1 << 20
  /// What one `VersionStore.readBlobs` holds at most: chunks as stored, and decoded.
  public static let bytesReadTogether = 16 << 20

  /// A chunk as stored: its bytes, zstd-compressed or as they are.
  public struct Chunk: Sendable {
    public var data: Data
    public var compressed: Bool

    public init(data: Data, compressed: Bool) {
      self.data = data
      self.compressed = compressed
    }

    /// How many bytes the chunk decodes to, read from its zstd frame's header; nil for a damaged
    /// chunk (no valid frame, or larger than a chunk can be).
    public var decodedSize: Int? {
      guard compressed else { return data.count <= BlobCodec.chunkSize ? data.count : nil }
      let size = data.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
      guard size != ZSTD_CONTENTSIZE_ERROR, size != ZSTD_CONTENTSIZE_UNKNOWN, size <= UInt64(BlobCodec.chunkSize)
      else { return nil }
      return Int(size)
    }

    /// The original bytes of a chunk stored alone (not a delta).
    public func decoded() throws -> Data {
      var bytes = Data()
      try BlobCodec.decode(data, compressed: compressed, into: &bytes)
      return bytes
    }
  }
  static let level: Int32 = 3
  /// Deltas are small: level 9 makes them 7% smaller than level 3 for no time worth measuring.
  static let deltaLevel: Int32 = 9
  /// The most a delta may cost, as a share of its chunk stored alone, for it to be kept rather than
  /// the chunk alone: three quarters. (Half kept 1,100 fewer of the replay fixture's 6,400 blobs as
  /// deltas, and its store was 65 KB larger; a delta is read in one step from its base either way.)
  static let deltaShare = (parts: 3, of: 4)

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

    /// `chunk` compressed against `base`'s bytes, when that is at most `BlobCodec.deltaShare` of
    /// `alone` (what it costs stored alone); otherwise nil, and the chunk is better stored alone.
    public func delta(_ chunk: UnsafeRawBufferPointer, base: Data, alone: Chunk) -> Data? {
      guard chunk.count <= BlobCodec.chunkSize, base.count <= BlobCodec.chunkSize else { return nil }
      let capacity = alone.data.count * BlobCodec.deltaShare.parts / BlobCodec.deltaShare.of
      guard capacity > 0 else { return nil }
      var output = Data(count: ZSTD_compressBound(chunk.count))
      let written = output.withUnsafeMutableBytes { out in
        base.withUnsafeBytes { dictionary in
          ZSTD_compress_usingDict(
            context, out.baseAddress, out.count, chunk.baseAddress, chunk.count, dictionary.baseAddress,
            dictionary.count, BlobCodec.deltaLevel)
        }
      }
      guard ZSTD_isError(written) == 0, written <= capacity else { return nil }
      output.count = written
      return output
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

  /// The original bytes of a stored chunk; of a delta when `base` is the bytes of its base.
  ///
  /// - Throws: `.internal` when the stored bytes are not a zstd frame of at most one chunk.
  public static func decode(_ stored: Data, compressed: Bool, base: Data? = nil, into buffer: inout Data) throws {
    guard compressed else {
      guard base == nil else {
        throw OperationError(.internal, "a stored delta is damaged (not compressed)", hint: .runCheck)
      }
      buffer = stored
      return
    }
    let size = stored.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
    guard size != ZSTD_CONTENTSIZE_ERROR, size != ZSTD_CONTENTSIZE_UNKNOWN, size <= UInt64(chunkSize) else {
      throw OperationError(.internal, "a stored chunk is damaged (no valid zstd frame)", hint: .runCheck)
    }
    buffer.count = Int(size)
    let result = try ZstdDecompression.withContext { context in
      buffer.withUnsafeMutableBytes { out in
        stored.withUnsafeBytes { input in
          guard let base else {
            return ZSTD_decompressDCtx(context, out.baseAddress, out.count, input.baseAddress, input.count)
          }
          return base.withUnsafeBytes { dictionary in
            ZSTD_decompress_usingDict(
              context, out.baseAddress, out.count, input.baseAddress, input.count, dictionary.baseAddress,
              dictionary.count)
          }
        }
      }
    }
    guard ZSTD_isError(result) == 0, result == Int(size) else {
      throw OperationError(
        .internal,
        base == nil ? "a stored chunk is damaged (zstd error)" : "a stored delta or its base is damaged (zstd error)",
        hint: .runCheck)
    }
  }
}

/// zstd decompression contexts, kept for the next frame: `ZSTD_decompress` makes and frees one (over
/// 100 KiB, set up anew) for every frame, which cost `check` a twentieth of its time.
enum ZstdDecompression {
  /// Idle contexts, as their addresses; at most a few, one per thread that decompresses at once.
  private static let idle = Mutex<[UInt]>([])

  /// Runs `body` with a context no other thread uses meanwhile.
  ///
  /// - Throws: `.internal` when zstd cannot allocate one.
  static func withContext<Result>(_ body: (OpaquePointer) throws -> Result) throws -> Result {
    let kept = idle.withLock { $0.popLast() }
    guard let context = kept.flatMap({ OpaquePointer(bitPattern: $0) }) ?? ZSTD_createDCtx() else {
      throw OperationError(.internal, "zstd could not allocate a decompression context (out of memory)")
    }
    defer {
      let address = UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(context)))
      let freed = idle.withLock { contexts in
        guard contexts.count < 8 else { return true }
        contexts.append(address)
        return false
      }
      if freed { ZSTD_freeDCtx(context) }
    }
    return try body(context)
  }
}
