import Crypto
import Foundation

/// A SHA-256 digest in lowercase hexadecimal, as manifests and tree entries carry it.
///
/// Held as its 32 bytes, not as text: a manifest of 100,000 files holds 100,000 of them.
public struct SHA256Hex: Sendable, Hashable, Codable, CustomStringConvertible, Comparable {
  /// The digest's bytes as four big-endian words, so that comparing words compares the hex text.
  private let words: (UInt64, UInt64, UInt64, UInt64)

  /// The 64 lowercase hexadecimal digits.
  public var value: String {
    String(unsafeUninitializedCapacity: 64) { buffer in
      writeHex(into: UnsafeMutableRawBufferPointer(buffer))
      return 64
    }
  }

  /// The digest's first 8 bytes as a number: a key that tells digests apart but by chance (or by
  /// design, in input made to share one), in a quarter of the room.
  var prefix: UInt64 { words.0 }

  /// Wraps `value` when it is 64 lowercase hexadecimal digits.
  public init?(_ value: String) {
    var value = value
    guard let words = value.withUTF8({ SHA256Hex.words(hex: UnsafeRawBufferPointer($0)) }) else { return nil }
    self.words = words
  }

  /// The digest written as `hex`, when it is 64 lowercase hexadecimal digits.
  init?(hex: UnsafeRawBufferPointer) {
    guard let words = SHA256Hex.words(hex: hex) else { return nil }
    self.words = words
  }

  /// The words of 64 lowercase hexadecimal digits, or nil.
  private static func words(hex: UnsafeRawBufferPointer) -> (UInt64, UInt64, UInt64, UInt64)? {
    guard hex.count == 64 else { return nil }
    // Without a branch per digit: a digit that is neither 0-9 nor a-f marks `invalid`.
    var invalid = false
    func word(_ at: Int) -> UInt64 {
      var word: UInt64 = 0
      for offset in at..<at + 16 {
        let digit = hex[offset]
        let number = digit &- 0x30
        let letter = digit &- 0x61
        invalid = invalid || (number >= 10 && letter >= 6)
        word = word << 4 | UInt64(number < 10 ? number : letter &+ 10)
      }
      return word
    }
    let words = (word(0), word(16), word(32), word(48))
    return invalid ? nil : words
  }

  /// Thirty-two zero bytes: what a `FileChange` keeps on the side where there is no file.
  static let zero = SHA256Hex(words: (0, 0, 0, 0))

  private init(words: (UInt64, UInt64, UInt64, UInt64)) { self.words = words }

  public init(_ digest: SHA256.Digest) {
    words = digest.withUnsafeBytes { SHA256Hex.words(of: $0) }
  }

  /// The digest whose 32 bytes are `bytes`, or nil when there are not 32.
  public init?(bytes: Data) {
    guard let digest = bytes.withUnsafeBytes({ SHA256Hex(bytes: $0) }) else { return nil }
    self = digest
  }

  /// The digest whose 32 bytes are `bytes`, or nil when there are not 32.
  public init?(bytes: UnsafeRawBufferPointer) {
    guard bytes.count == 32 else { return nil }
    words = SHA256Hex.words(of: bytes)
  }

  private static func words(of bytes: UnsafeRawBufferPointer) -> (UInt64, UInt64, UInt64, UInt64) {
    func word(_ at: Int) -> UInt64 { UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
    return (word(0), word(8), word(16), word(24))
  }

  public init(from decoder: any Decoder) throws {
    let text = try decoder.singleValueContainer().decode(String.self)
    guard let digest = SHA256Hex(text) else {
      throw DecodingError.dataCorrupted(
        .init(codingPath: decoder.codingPath, debugDescription: "not 64 lowercase hex digits"))
    }
    self = digest
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.singleValueContainer()
    try container.encode(value)
  }

  public var description: String { value }

  public static func == (a: SHA256Hex, b: SHA256Hex) -> Bool {
    a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2 && a.words.3 == b.words.3
  }

  public func hash(into hasher: inout Hasher) {
    hasher.combine(words.0)
    hasher.combine(words.1)
    hasher.combine(words.2)
    hasher.combine(words.3)
  }

  public static func < (a: SHA256Hex, b: SHA256Hex) -> Bool { a.words < b.words }

  /// The digest's 32 bytes, as stores key blobs by them.
  public var bytes: Data { withBytes { Data($0) } }

  /// Calls `body` with the digest's 32 bytes, without making a copy on the heap.
  public func withBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
    try withUnsafeBytes(of: (words.0.bigEndian, words.1.bigEndian, words.2.bigEndian, words.3.bigEndian)) {
      try body($0)
    }
  }

  /// Appends the 64 hexadecimal digits to `bytes`.
  func appendHex(to bytes: inout [UInt8]) {
    withUnsafeTemporaryAllocation(byteCount: 64, alignment: 8) { buffer in
      writeHex(into: buffer)
      bytes.append(contentsOf: UnsafeRawBufferPointer(buffer))
    }
  }

  /// Writes the 64 hexadecimal digits at the start of `buffer`, eight at a time: a tree's digest
  /// spells those of every file.
  func writeHex(into buffer: UnsafeMutableRawBufferPointer) {
    precondition(buffer.count >= 64)
    for (index, word) in [words.0, words.1, words.2, words.3].enumerated() {
      buffer.storeBytes(of: SHA256Hex.hexDigits(UInt32(word >> 32)), toByteOffset: index * 16, as: UInt64.self)
      buffer.storeBytes(
        of: SHA256Hex.hexDigits(UInt32(truncatingIfNeeded: word)), toByteOffset: index * 16 + 8, as: UInt64.self)
    }
  }

  /// The eight lowercase hexadecimal digits of `value`, as the bytes of a number stored in memory
  /// order (the first digit first).
  private static func hexDigits(_ value: UInt32) -> UInt64 {
    // Each digit's value in a byte of its own, the last digit in the lowest byte.
    var spread = UInt64(value)
    spread = (spread | spread << 16) & 0x0000_FFFF_0000_FFFF
    spread = (spread | spread << 8) & 0x00FF_00FF_00FF_00FF
    spread = (spread | spread << 4) & 0x0F0F_0F0F_0F0F_0F0F
    // 1 in the bytes of 10 to 15, which become letters: "a" is 0x27 past "0" + 10.
    let letters = ((spread &+ 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101
    let ascii = spread &+ 0x3030_3030_3030_3030 &+ letters &* 0x27
    return UInt64(bigEndian: ascii)
  }

  /// The digest of `bytes`.
  public static func of<Bytes: DataProtocol>(_ bytes: Bytes) -> SHA256Hex {
    SHA256Hex(SHA256.hash(data: bytes))
  }
}

/// Lowercase hexadecimal of any byte sequence.
public func hexString<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
  let digits = Array("0123456789abcdef".utf8)
  var out: [UInt8] = []
  out.reserveCapacity(64)
  for byte in bytes {
    out.append(digits[Int(byte >> 4)])
    out.append(digits[Int(byte & 0x0F)])
  }
  return String(decoding: out, as: UTF8.self)
}

/// The identity of a configuration's content: SHA-256 of `<mode> <sha256> <path>\n` per file, in path byte order.
///
/// Two archives of one configuration have one tree digest, whatever their compression, mtimes or
/// manifest metadata.
public struct TreeDigest: Sendable, Hashable, Codable, CustomStringConvertible {
  /// `sha256:` followed by 64 hexadecimal digits.
  public let value: String

  public init?(_ value: String) {
    guard value.hasPrefix("sha256:"), SHA256Hex(String(value.dropFirst(7))) != nil else {
      return nil
    }
    self.value = value
  }

  /// The digest whose 32 bytes are `sha256`.
  public init(sha256: SHA256Hex) {
    value = "sha256:" + sha256.value
  }

  /// The digest's 32 bytes.
  public var sha256: SHA256Hex {
    // `value` is checked to be `sha256:` and 64 lowercase hexadecimal digits when made.
    SHA256Hex(String(value.dropFirst(7)))!
  }

  /// The digest of `files`, in any order.
  public init(files: [ManifestFile]) {
    self.init(sortedFiles: files.inPathOrder)
  }

  /// The digest of `files`, which are in path byte order already.
  init(sortedFiles files: [ManifestFile]) {
    var lines = LineHashing()
    for index in files.indices {
      lines.write(files[index].mode.rawValue)
      lines.write(" ")
      lines.writeHex(files[index].sha256)
      lines.write(" ")
      lines.write(files[index].path)
      lines.write("\n")
    }
    value = "sha256:" + hexString(lines.finish())
  }

  public init(from decoder: any Decoder) throws {
    let text = try decoder.singleValueContainer().decode(String.self)
    guard let digest = TreeDigest(text) else {
      throw DecodingError.dataCorrupted(
        .init(codingPath: decoder.codingPath, debugDescription: "not `sha256:` and 64 hex digits"))
    }
    self = digest
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.singleValueContainer()
    try container.encode(value)
  }

  public var description: String { value }
}

extension Array where Element == ManifestFile {
  /// Whether the files are in path byte order, as manifests and tree digests list them.
  var isInPathOrder: Bool {
    // Each path is borrowed where it lies: `files[index].path` copied the whole entry, twice a
    // path (3.7 ms of a one-file push of 20,000 files, which checks two lists).
    withUnsafeBufferPointer { files in
      guard let first = files.baseAddress else { return true }
      return (1..<Swift.max(files.count, 1)).allSatisfy { index in
        EntryPath.byteOrder((first + index - 1).pointee.path, (first + index).pointee.path)
      }
    }
  }

  /// The files in path byte order: themselves when they are already.
  var inPathOrder: [ManifestFile] {
    isInPathOrder ? self : sorted { EntryPath.byteOrder($0.path, $1.path) }
  }
}
