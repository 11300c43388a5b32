import Foundation
import Testing

@testable import ConfvaultCore

/// The stat cache finds each file of a scan by its path, however the cache file lists them (one
/// written before it kept its files in path order lists them in any order).
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
    func file(_ path: String, _ identity: FileIdentity) -> FolderFile {
      var file = FolderFile(
        path: path, absolutePath: folder + "/" + path, mode: .regular, size: 5, modificationTime: 1_700_000_000)
      file.identity = identity
      return file
    }
    // A scan's files, in path byte order, with paths the cache lacks among them.
    let absent = ["a", "a/b", "many/file-500.json", "zz", ""]
    let indexed = (paths.enumerated().map { ($1, $0) } + absent.map { ($0, -1) }).sorted {
      EntryPath.byteOrder($0.0, $1.0)
    }
    let scanned = indexed.map { file($0.0, identity(max($0.1, 0))) }
    let known = try cache.known(scanned)
    #expect(known.count == scanned.count)
    for ((path, index), found) in zip(indexed, known) {
      let digest = found < 0 ? nil : cache.entry(at: Int(found)).sha256
      #expect(digest == (index < 0 ? nil : SHA256Hex.of(Data(path.utf8))), "\(path)")
    }
    // Another inode for every other file: those are to be read again.
    let moved = indexed.enumerated().map { position, entry in
      var changed = identity(max(entry.1, 0))
      if position % 2 == 0 { changed.inode += 1_000 }
      return file(entry.0, changed)
    }
    for (position, found) in try cache.known(moved).enumerated() {
      let (path, index) = indexed[position]
      #expect((found >= 0) == (index >= 0 && position % 2 == 1), "\(path)")
    }
  }
}
