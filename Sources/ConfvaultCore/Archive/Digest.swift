import Crypto
import Foundation

/// A SHA-256 digest in lowercase hexadecimal, as manifests and tree entries carry it.
public struct SHA256Hex: Sendable, Hashable, Codable, CustomStringConvertible, Comparable {
  public let value: String

  /// Wraps `value` when it is 64 lowercase hexadecimal digits.
  public init?(_ value: String) {
    guard value.utf8.count == 64,
      value.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
    else { return nil }
    self.value = value
  }

  public init(_ digest: SHA256.Digest) {
    value = hexString(digest)
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

  public static func < (a: SHA256Hex, b: SHA256Hex) -> Bool { a.value < b.value }

  /// The digest whose 32 bytes are `bytes`, or nil when there are not 32.
  public init?(bytes: Data) {
    guard bytes.count == 32 else { return nil }
    value = hexString(bytes)
  }

  /// The digest's 32 bytes, as stores key blobs by them.
  public var bytes: Data {
    var bytes = Data(capacity: 32)
    var iterator = value.utf8.makeIterator()
    func nibble(_ c: UInt8) -> UInt8 { c <= 0x39 ? c - 0x30 : c - 0x61 + 10 }
    while let high = iterator.next(), let low = iterator.next() {
      bytes.append(nibble(high) << 4 | nibble(low))
    }
    return bytes
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

  /// The digest of `files`, in any order.
  public init(files: [ManifestFile]) {
    var hasher = SHA256()
    for file in files.sorted(by: { EntryPath.byteOrder($0.path, $1.path) }) {
      hasher.update(data: Array("\(file.mode.rawValue) \(file.sha256.value) \(file.path)\n".utf8))
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
