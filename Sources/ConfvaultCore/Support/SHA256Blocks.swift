import CSHA256
import Crypto

/// A SHA-256 state between whole 64-byte blocks (FIPS 180-4): the shape in which `check` hashes
/// the versions' lines (`LinesHasher`), whose saved states are all at block boundaries.
///
/// With the processor's SHA extensions, the state is its eight words (32 bytes to save) and two
/// messages are hashed at once (`CSHA256`). Without them, it is swift-crypto's hasher, whose code
/// for such processors is faster than portable C (509 against 273 MB/s on this AMD EPYC with the
/// extensions masked): one message at a time, and a saved state is a copy of its object.
///
/// Not `Sendable`, as swift-crypto's hasher is not: `LinesHasher` hands states from thread to thread
/// under its locks.
struct SHA256Blocks {
  /// How blocks are compressed: with the processor's SHA extensions, or by swift-crypto.
  enum Compression: Sendable, CaseIterable {
    case hardware
    case library

    /// The extensions where the processor has them (checked once).
    static let best: Compression = confvault_sha256_hardware_available() != 0 ? .hardware : .library

    /// Those this processor can run.
    static var available: [Compression] { best == .hardware ? [.hardware, .library] : [.library] }
  }

  static let blockBytes = 64

  private enum State {
    case words(SIMD8<UInt32>)
    case library(SHA256)
  }

  private var state: State

  /// The state before any byte.
  init(_ compression: Compression) {
    switch compression {
    case .hardware:
      state = .words([
        0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19,
      ])
    case .library: state = .library(SHA256())
    }
  }

  /// Hashes `bytes`, a whole number of blocks.
  mutating func add(_ bytes: UnsafeRawBufferPointer) {
    precondition(bytes.count % SHA256Blocks.blockBytes == 0, "SHA256Blocks.add: not a whole number of blocks")
    switch state {
    case .words(var words):
      guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
      SHA256Blocks.withWords(&words) {
        confvault_sha256_blocks_hardware($0, base, bytes.count / SHA256Blocks.blockBytes)
      }
      state = .words(words)
    case .library(var hasher):
      // Not left holding the state's object while it is updated: it would be copied first.
      state = .words(.zero)
      hasher.update(bufferPointer: bytes)
      state = .library(hasher)
    }
  }

  /// Hashes `a` into `first` and `b` into `second`, as many whole blocks each: at once with the
  /// SHA extensions.
  static func add(
    _ a: UnsafeRawBufferPointer, to first: inout SHA256Blocks, _ b: UnsafeRawBufferPointer,
    to second: inout SHA256Blocks
  ) {
    precondition(a.count == b.count, "SHA256Blocks.add: two messages of different lengths")
    guard case .words(var x) = first.state, case .words(var y) = second.state, let p = a.baseAddress,
      let q = b.baseAddress
    else {
      first.add(a)
      second.add(b)
      return
    }
    precondition(a.count % SHA256Blocks.blockBytes == 0, "SHA256Blocks.add: not a whole number of blocks")
    withWords(&x) { x in
      withWords(&y) { y in
        confvault_sha256_blocks2_hardware(
          x, p.assumingMemoryBound(to: UInt8.self), y, q.assumingMemoryBound(to: UInt8.self),
          a.count / SHA256Blocks.blockBytes)
      }
    }
    (first.state, second.state) = (.words(x), .words(y))
  }

  /// The digest of a message whose first `byteCount` - `tail.count` bytes this state has hashed,
  /// and whose last are `tail` (any length).
  func digest(tail: UnsafeRawBufferPointer, byteCount: Int) -> [UInt8] {
    if case .library(var hasher) = state {
      hasher.update(bufferPointer: tail)
      return Array(hasher.finalize())
    }
    var copy = self
    let whole = tail.count - tail.count % SHA256Blocks.blockBytes
    copy.add(UnsafeRawBufferPointer(rebasing: tail[..<whole]))
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
    padding.withUnsafeBytes { copy.add(UnsafeRawBufferPointer(rebasing: $0[..<(blocks * SHA256Blocks.blockBytes)])) }
    guard case .words(let words) = copy.state else { preconditionFailure("unreachable") }
    var digest: [UInt8] = []
    digest.reserveCapacity(32)
    for index in 0..<8 {
      let word = words[index]
      digest += [
        UInt8(word >> 24), UInt8(truncatingIfNeeded: word >> 16), UInt8(truncatingIfNeeded: word >> 8),
        UInt8(truncatingIfNeeded: word),
      ]
    }
    return digest
  }

  private static func withWords(_ words: inout SIMD8<UInt32>, _ body: (UnsafeMutablePointer<UInt32>) -> Void) {
    withUnsafeMutablePointer(to: &words) { $0.withMemoryRebound(to: UInt32.self, capacity: 8, body) }
  }
}
