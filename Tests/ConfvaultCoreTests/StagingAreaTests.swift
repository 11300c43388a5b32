import Foundation
import Testing

@testable import ConfvaultCore

/// An import's staging area finds each staged content by its digest, and stages each content once.
@Suite final class StagingAreaTests {
  /// Each test's staging areas go in a folder of its own, removed after it.
  let parent = NSTemporaryDirectory() + "confvault-staging-\(UUID().uuidString)"

  deinit { try? FileManager.default.removeItem(atPath: parent) }

  @Test("contents are found by digest, those that share their first 8 bytes too, and each is staged once")
  func sharedPrefixes() throws {
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

  @Test("20,000 contents, over several chunks and growths of the table, are each found at their place, staged once")
  func many() throws {
    let area = try StagingArea(in: parent)
    defer { area.remove() }
    let digests = (0..<20_000).map { SHA256Hex.of(Data("content \($0)".utf8)) }
    func file(_ index: Int) -> ManifestFile {
      ManifestFile(path: "f\(index)", size: Int64(index), mode: .regular, sha256: digests[index])
    }
    let notNew = digests.indices.filter { !area.record(file($0), offset: Int64($0) * 7) }
    #expect(notNew.isEmpty, "\(notNew.count) contents not staged as new")
    let order = digests.indices.shuffled()
    let stagedAgain = order.filter { area.record(file($0), offset: 1) }
    #expect(stagedAgain.isEmpty, "\(stagedAgain.count) contents staged twice")
    let misplaced = order.filter {
      let blob = area.blob(digests[$0])
      return blob.offset != Int64($0) * 7 || blob.size != Int64($0)
    }
    #expect(misplaced.isEmpty, "\(misplaced.count) contents found elsewhere, the first at \(misplaced.prefix(1))")
  }
}
