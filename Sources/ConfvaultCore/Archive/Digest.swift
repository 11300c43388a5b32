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

  /// Wraps `value` when it is 64 lowercase hexadecimal digits.
  public init?(_ value: String) {
    var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    var count = 0
    var valid = true
    for digit in value.utf8 {
      let nibble: UInt8
      switch digit {
      case 0x30...0x39: nibble = digit - 0x30
      case 0x61...0x66: nibble = digit - 0x61 + 10
      default:
        valid = false
        nibble = 0
      }
      guard valid, count < 64 else { return nil }
      let shifted = UInt64(nibble) << UInt64(60 - 4 * (count % 16))
      switch count / 16 {
      case 0: words.0 |= shifted
      case 1: words.1 |= shifted
      case 2: words.2 |= shifted
      default: words.3 |= shifted
      }
      count += 1
    }
    guard count == 64 else { return nil }
    self.words = words
  }

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
  public var bytes: Data {
    var bytes = Data(capacity: 32)
    for word in [words.0, words.1, words.2, words.3] {
      withUnsafeBytes(of: word.bigEndian) { bytes.append(contentsOf: $0) }
    }
    return bytes
  }

  /// Writes the 64 hexadecimal digits at the start of `buffer`.
  func writeHex(into buffer: UnsafeMutableRawBufferPointer) {
    let digits: StaticString = "0123456789abcdef"
    var at = 0
    for word in [words.0, words.1, words.2, words.3] {
      for shift in stride(from: 60, through: 0, by: -4) {
        buffer[at] = digits.utf8Start[Int((word >> UInt64(shift)) & 0xF)]
        at += 1
      }
    }
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
    self.init(sortedFiles: files.isInPathOrder ? files : files.sorted { EntryPath.byteOrder($0.path, $1.path) })
  }

  /// The digest of `files`, which are in path byte order already.
  init(sortedFiles files: [ManifestFile]) {
    var hasher = SHA256()
    // `<mode> <sha256> ` is 70 bytes; the path follows.
    var line = [UInt8](repeating: 0, count: 70)
    for file in files {
      line.removeSubrange(70...)
      line.withUnsafeMutableBytes { buffer in
        for (at, byte) in file.mode.rawValue.utf8.prefix(4).enumerated() { buffer[at] = byte }
        buffer[4] = 0x20
        file.sha256.writeHex(into: UnsafeMutableRawBufferPointer(rebasing: buffer[5..<69]))
        buffer[69] = 0x20
      }
      line.append(contentsOf: file.path.utf8)
      line.append(0x0A)
      line.withUnsafeBytes { hasher.update(bufferPointer: $0) }
    }
    value = "sha256:" + hexString(hasher.finalize())
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
    zip(self, dropFirst()).allSatisfy { EntryPath.byteOrder($0.path, $1.path) }
  }
}
