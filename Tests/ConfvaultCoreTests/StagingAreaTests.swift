import Foundation
import Testing

@testable import ConfvaultCore

/// An import's staging area finds each staged content by its digest, keyed by the digest's first
/// 8 bytes, and stages each content once.
@Suite struct StagingAreaTests {
  @Test("contents are found by digest, those that share their first 8 bytes too, and each is staged once")
  func sharedPrefixes() throws {
    let parent = NSTemporaryDirectory() + "confvault-staging-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: parent) }
    let area = try StagingArea(in: parent)
    defer { area.remove() }
    // Three digests with the same first 8 bytes (16 hex digits), and one with others.
    func digest(_ prefix: String, _ digit: String) throws -> SHA256Hex {
      try #require(SHA256Hex(String(repeating: prefix, count: 8) + String(repeating: digit, count: 48)))
    }
    let (a, b, c, other) = (try digest("ab", "1"), try digest("ab", "2"), try digest("ab", "3"), try digest("cd", "1"))
    func file(_ digest: SHA256Hex, _ size: Int64) -> ManifestFile {
      ManifestFile(path: "settings.yaml", size: size, mode: .regular, sha256: digest)
    }
    #expect(area.record(file(a, 10), offset: 0))
    #expect(area.record(file(b, 20), offset: 10), "another content, though it shares the first 8 bytes")
    #expect(!area.record(file(a, 10), offset: 30), "staged already")
    #expect(area.record(file(other, 1), offset: 30))
    #expect(area.record(file(c, 5), offset: 31))
    #expect(!area.record(file(b, 20), offset: 36), "staged already, beside another with its first 8 bytes")
    let places = [a, b, c, other].map { [area.blob($0).offset, area.blob($0).size] }
    #expect(places == [[0, 10], [10, 20], [31, 5], [30, 1]])
  }
}
