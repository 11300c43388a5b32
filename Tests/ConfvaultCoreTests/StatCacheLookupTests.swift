import Foundation
import Testing

@testable import ConfvaultCore

/// The stat cache finds each file by its path, however the cache file lists them (one written before
/// it kept its files in path order lists them in any order).
@Suite struct StatCacheLookupTests {
  @Test("a cache listing its files in any order finds each by path; a changed status or another path is not found")
  func lookup() throws {
    let folder = NSTemporaryDirectory() + "confvault-stat-cache-\(UInt32.random(in: 0...UInt32.max))"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let paths =
      ["z.yaml", "a/b.yaml", "a.txt", "B", "é/x", "a-c/d"] + (0..<500).map { "many/file-\($0).json" }.shuffled()
    var data = Data("confvault stat cache 1\n".utf8)
    func number(_ value: UInt64) {
      var value = value
      while value >= 0x80 {
        data.append(UInt8(value & 0x7F) | 0x80)
        value >>= 7
      }
      data.append(UInt8(value))
    }
    func identity(_ index: Int) -> FileIdentity {
      FileIdentity(
        device: 1, inode: UInt64(index + 10), size: 5, modified: timespec(tv_sec: 1_700_000_000, tv_nsec: 7),
        changed: timespec(tv_sec: 1_700_000_000, tv_nsec: 9))
    }
    for (index, path) in paths.enumerated() {
      number(UInt64(path.utf8.count))
      data.append(contentsOf: path.utf8)
      for value: UInt64 in [1, UInt64(index + 10), 5, 1_700_000_000, 7, 1_700_000_000, 9] { number(value) }
      data.append(SHA256Hex.of(Data(path.utf8)).bytes)
    }
    try data.write(to: URL(fileURLWithPath: folder + "/cache"))

    let cache = StatCache(path: folder + "/cache")
    #expect(cache.count == paths.count)
    func file(_ path: String) -> FolderFile {
      FolderFile(
        path: path, absolutePath: folder + "/" + path, mode: .regular, size: 5, modificationTime: 1_700_000_000)
    }
    for (index, path) in paths.enumerated() {
      #expect(cache.digest(of: file(path), identity: identity(index)) == SHA256Hex.of(Data(path.utf8)), "\(path)")
      var moved = identity(index)
      moved.inode += 1_000
      #expect(cache.digest(of: file(path), identity: moved) == nil, "\(path): another inode")
    }
    for absent in ["a", "a/b", "many/file-500.json", "zz", ""] {
      #expect(cache.digest(of: file(absent), identity: identity(0)) == nil, "\(absent)")
    }
  }
}
