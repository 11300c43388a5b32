import Crypto
import Foundation
import Testing

@testable import ConfvaultCore

/// The compression function `check` hashes the versions' lines with, against swift-crypto's SHA-256.
@Suite struct SHA256BlocksTests {
  /// Messages whose padding takes one block or two, and lengths on and next to block boundaries.
  static let lengths = [0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 1_000, 4_096, 4_097, 65_599]

  @Test(
    "the digest of a message is SHA-256's, also resumed from a saved state",
    arguments: SHA256Blocks.Compression.available)
  func digests(compression: SHA256Blocks.Compression) {
    var generator = SeededGenerator(seed: 0x5A25_6B10)
    for length in Self.lengths {
      let message = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
      let expected = Array(SHA256.hash(data: message))
      message.withUnsafeBytes { bytes in
        #expect(SHA256Blocks().digest(tail: bytes, byteCount: length, compression) == expected, "\(length) bytes")
        // Whole blocks first, the rest as the tail.
        let whole = length - length % 64
        var state = SHA256Blocks()
        state.add(UnsafeRawBufferPointer(rebasing: bytes[..<whole]), compression)
        let tail = UnsafeRawBufferPointer(rebasing: bytes[whole...])
        #expect(state.digest(tail: tail, byteCount: length, compression) == expected, "\(length) bytes resumed")
      }
    }
  }

  @Test("two messages hashed at once give each its own digest", arguments: SHA256Blocks.Compression.available)
  func twoAtOnce(compression: SHA256Blocks.Compression) {
    var generator = SeededGenerator(seed: 0x5A25_6B11)
    for blocks in [1, 2, 64] {
      let first = (0..<blocks * 64).map { _ in UInt8.random(in: 0...255, using: &generator) }
      let second = (0..<blocks * 64).map { _ in UInt8.random(in: 0...255, using: &generator) }
      var (x, y) = (SHA256Blocks(), SHA256Blocks())
      first.withUnsafeBytes { a in
        second.withUnsafeBytes { b in SHA256Blocks.add(a, to: &x, b, to: &y, compression) }
      }
      let empty = UnsafeRawBufferPointer(start: nil, count: 0)
      #expect(x.digest(tail: empty, byteCount: first.count, compression) == Array(SHA256.hash(data: first)))
      #expect(y.digest(tail: empty, byteCount: second.count, compression) == Array(SHA256.hash(data: second)))
    }
  }
}
