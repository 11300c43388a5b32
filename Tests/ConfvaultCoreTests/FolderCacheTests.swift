import Foundation
import Testing

@testable import ConfvaultCore

/// The cache of decoded folders: bounded by the entries it holds and by the largest folder it keeps.
@Suite struct FolderCacheTests {
  static func folder(_ entries: Int, _ tag: UInt8) -> (digest: Data, entries: [TreeNode.Entry]) {
    let listed = (0..<entries).map {
      TreeNode.Entry.file(name: "f\($0)", mode: .regular, size: 1, blob: SHA256Hex.of(Data([tag])))
    }
    return (Data(repeating: tag, count: 32), listed)
  }

  @Test func largestFolder() {
    let cache = FolderCache(limit: 100, largestFolder: 10)
    let small = Self.folder(10, 1)
    let large = Self.folder(11, 2)
    cache.insert(small.digest, small.entries)
    cache.insert(large.digest, large.entries)
    #expect(cache.entries(small.digest) == small.entries)
    #expect(cache.entries(large.digest) == nil)
  }

  @Test func leastRecentlyUsedGoFirst() {
    let cache = FolderCache(limit: 30, largestFolder: 10)
    let folders = (0..<5).map { Self.folder(7, UInt8($0)) }
    for folder in folders.prefix(4) { cache.insert(folder.digest, folder.entries) }
    _ = cache.entries(folders[0].digest)  // used again: the newest but for the next
    cache.insert(folders[4].digest, folders[4].entries)  // 35 entries: the older half of 5, and one, go
    #expect(cache.entries(folders[4].digest) == folders[4].entries)
    #expect(cache.entries(folders[0].digest) == folders[0].entries)
    for folder in folders[1...3] { #expect(cache.entries(folder.digest) == nil) }
  }
}
