import Crypto
import Foundation
import Testing

@testable import ConfvaultCore

/// The SHA-256 `check` hashes the versions' lines with, against swift-crypto's one-shot SHA-256.
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
        #expect(SHA256Blocks(compression).digest(tail: bytes, byteCount: length) == expected, "\(length) bytes")
        // Whole blocks first, then a copy of that state (as a checkpoint is) finishes the rest.
        let whole = length - length % 64
        var state = SHA256Blocks(compression)
        state.add(UnsafeRawBufferPointer(rebasing: bytes[..<whole]))
        let saved = state
        state.add(UnsafeRawBufferPointer(rebasing: bytes[..<(whole - whole % 128)]))
        let tail = UnsafeRawBufferPointer(rebasing: bytes[whole...])
        #expect(saved.digest(tail: tail, byteCount: length) == expected, "\(length) bytes resumed")
      }
    }
  }

  @Test(
    "two messages hashed at once from different states give each its own digest",
    arguments: SHA256Blocks.Compression.available)
  func twoAtOnce(compression: SHA256Blocks.Compression) {
    var generator = SeededGenerator(seed: 0x5A25_6B11)
    func random(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) } }
    for blocks in [1, 2, 64] {
      // The first message has a block of its own before: the two states differ when hashed together.
      let (before, first, second) = (random(64), random(blocks * 64), random(blocks * 64))
      var (x, y) = (SHA256Blocks(compression), SHA256Blocks(compression))
      before.withUnsafeBytes { x.add($0) }
      first.withUnsafeBytes { a in
        second.withUnsafeBytes { b in SHA256Blocks.add(a, to: &x, b, to: &y) }
      }
      let empty = UnsafeRawBufferPointer(start: nil, count: 0)
      #expect(x.digest(tail: empty, byteCount: 64 + first.count) == Array(SHA256.hash(data: before + first)))
      #expect(y.digest(tail: empty, byteCount: second.count) == Array(SHA256.hash(data: second)))
    }
  }
}
