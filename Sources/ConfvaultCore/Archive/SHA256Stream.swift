import Crypto

/// An incremental SHA-256 over streamed chunks, giving a `SHA256Hex`.
public struct SHA256Stream {
  private var hasher = SHA256()

  public init() {}

  public mutating func update(_ chunk: UnsafeRawBufferPointer) {
    hasher.update(bufferPointer: chunk)
  }

  public func finalize() -> SHA256Hex {
    SHA256Hex(hasher.finalize())
  }
}
