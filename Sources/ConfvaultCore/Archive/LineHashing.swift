import Crypto
import Foundation

/// SHA-256 over lines written piece by piece into one buffer, each piece copied by its bytes, and
/// hashed 64 KiB at a time: one update per line cost more than the hashing, and appending each
/// piece to an array more again. Tree digests (`TreeDigest`) and folder digests (`TreeNode`) are
/// written through it: a push's of 20,000 files, and `check`'s of every stored folder.
struct LineHashing: ~Copyable {
  private var hasher = SHA256()
  private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 8)
  private var used = 0

  deinit { buffer.deallocate() }

  mutating func write(_ text: String) {
    EntryPath.withBytes(text) { write(UnsafeRawBufferPointer($0)) }
  }

  mutating func write(_ bytes: UnsafeRawBufferPointer) {
    guard room(bytes.count) else { return hasher.update(bufferPointer: bytes) }
    if let base = bytes.baseAddress { (buffer.baseAddress! + used).copyMemory(from: base, byteCount: bytes.count) }
    used += bytes.count
  }

  /// The digits of `value` (no sign: sizes are never negative), as `String(value)` spells them.
  mutating func writeDecimal(_ value: Int64) {
    guard value > 0 else { return write(String(value)) }
    _ = room(19)
    var digits = 0
    var rest = UInt64(value)
    while rest > 0 {
      digits += 1
      rest /= 10
    }
    rest = UInt64(value)
    for offset in stride(from: used + digits - 1, through: used, by: -1) {
      buffer[offset] = UInt8(ascii: "0") + UInt8(rest % 10)
      rest /= 10
    }
    used += digits
  }

  mutating func writeHex(_ digest: SHA256Hex) {
    _ = room(64)
    digest.writeHex(into: UnsafeMutableRawBufferPointer(rebasing: buffer[used...]))
    used += 64
  }

  /// A folder's digest in hexadecimal (any length: a damaged record's is not 32 bytes).
  mutating func writeHex(_ bytes: Data) {
    guard bytes.count == 32, let digest = SHA256Hex(bytes: bytes) else { return write(hexString(bytes)) }
    writeHex(digest)
  }

  /// Makes room for `count` bytes, hashing what the buffer holds first if needed; false when
  /// they are more than the whole buffer holds.
  private mutating func room(_ count: Int) -> Bool {
    if used + count > buffer.count {
      hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[..<used]))
      used = 0
    }
    return count <= buffer.count
  }

  consuming func finish() -> Data {
    hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[..<used]))
    return Data(hasher.finalize())
  }
}
