import CSHA256

/// A SHA-256 state between whole 64-byte blocks (FIPS 180-4), and the compression function that
/// moves it on: the shape in which `check` hashes the versions' lines (`LinesHasher`), whose saved
/// states are all at block boundaries. Swift's crypto library hashes one message at a time and keeps
/// its state in an object of its own; this hashes two messages at once where the processor allows,
/// and a saved state is these 32 bytes.
struct SHA256Blocks: Sendable, Equatable {
  /// How blocks are compressed: with the processor's SHA extensions, or in portable C.
  enum Compression: Sendable, CaseIterable {
    case hardware
    case portable

    /// The extensions where the processor has them (checked once).
    static let best: Compression = confvault_sha256_hardware_available() != 0 ? .hardware : .portable

    /// Those this processor can run.
    static var available: [Compression] { best == .hardware ? [.hardware, .portable] : [.portable] }
  }

  static let blockBytes = 64

  private var words: SIMD8<UInt32>

  /// The state before any byte.
  init() {
    words = [0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19]
  }

  /// Hashes `bytes`, a whole number of blocks.
  mutating func add(_ bytes: UnsafeRawBufferPointer, _ compression: Compression) {
    precondition(bytes.count % SHA256Blocks.blockBytes == 0, "SHA256Blocks.add: not a whole number of blocks")
    guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
    let blocks = bytes.count / SHA256Blocks.blockBytes
    withWords { words in
      switch compression {
      case .hardware: confvault_sha256_blocks_hardware(words, base, blocks)
      case .portable: confvault_sha256_blocks_portable(words, base, blocks)
      }
    }
  }

  /// Hashes `a` into `first` and `b` into `second`, as many whole blocks each, at once.
  static func add(
    _ a: UnsafeRawBufferPointer, to first: inout SHA256Blocks, _ b: UnsafeRawBufferPointer,
    to second: inout SHA256Blocks, _ compression: Compression
  ) {
    precondition(a.count == b.count, "SHA256Blocks.add: two messages of different lengths")
    guard compression == .hardware, let x = a.baseAddress, let y = b.baseAddress else {
      first.add(a, compression)
      second.add(b, compression)
      return
    }
    precondition(a.count % SHA256Blocks.blockBytes == 0, "SHA256Blocks.add: not a whole number of blocks")
    first.withWords { p in
      second.withWords { q in
        confvault_sha256_blocks2_hardware(
          p, x.assumingMemoryBound(to: UInt8.self), q, y.assumingMemoryBound(to: UInt8.self),
          a.count / SHA256Blocks.blockBytes)
      }
    }
  }

  /// The digest of a message whose first `byteCount` - `tail.count` bytes this state has hashed,
  /// and whose last are `tail` (any length).
  func digest(tail: UnsafeRawBufferPointer, byteCount: Int, _ compression: Compression) -> [UInt8] {
    var state = self
    let whole = tail.count - tail.count % SHA256Blocks.blockBytes
    state.add(UnsafeRawBufferPointer(rebasing: tail[..<whole]), compression)
    // The rest, a 1 bit, zeros, and the message's length in bits (big-endian): one block or two.
    var padding = [UInt8](repeating: 0, count: 2 * SHA256Blocks.blockBytes)
    let rest = tail.count - whole
    for index in 0..<rest { padding[index] = tail[whole + index] }
    padding[rest] = 0x80
    let blocks = rest + 9 <= SHA256Blocks.blockBytes ? 1 : 2
    let bits = UInt64(byteCount) &* 8
    for index in 0..<8 {
      padding[blocks * SHA256Blocks.blockBytes - 1 - index] = UInt8(truncatingIfNeeded: bits >> (8 * index))
    }
    padding.withUnsafeBytes {
      state.add(UnsafeRawBufferPointer(rebasing: $0[..<(blocks * SHA256Blocks.blockBytes)]), compression)
    }
    var digest: [UInt8] = []
    digest.reserveCapacity(32)
    for index in 0..<8 {
      let word = state.words[index]
      digest += [
        UInt8(word >> 24), UInt8(truncatingIfNeeded: word >> 16), UInt8(truncatingIfNeeded: word >> 8),
        UInt8(truncatingIfNeeded: word),
      ]
    }
    return digest
  }

  private mutating func withWords(_ body: (UnsafeMutablePointer<UInt32>) -> Void) {
    withUnsafeMutablePointer(to: &words) { $0.withMemoryRebound(to: UInt32.self, capacity: 8, body) }
  }
}
