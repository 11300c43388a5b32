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

  @Test(
    "a cache cut anywhere inside an entry, with nanoseconds past a second or a path that is not UTF-8, is not trusted at all"
  )
  func damaged() throws {
    let folder = NSTemporaryDirectory() + "confvault-stat-cache-\(UInt32.random(in: 0...UInt32.max))"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    func entry(_ path: [UInt8]) -> [UInt8] {
      // Device, inode, size, mtime and its nanoseconds, ctime and its: each below 128, one byte.
      [UInt8(path.count)] + path + [1, 2, 5, 100, 7, 100, 9] + [UInt8](SHA256Hex.of(Data(path)).bytes)
    }
    let magic = Array("confvault stat cache 1\n".utf8)
    let first = entry(Array("a.yaml".utf8))
    let whole = magic + first + entry(Array("b/c.yaml".utf8))
    func count(_ bytes: [UInt8]) throws -> Int {
      try Data(bytes).write(to: URL(fileURLWithPath: folder + "/cache"))
      return StatCache(path: folder + "/cache").count
    }
    #expect(try count(whole) == 2)
    #expect(try count(magic + first) == 1, "cut between entries: the first is whole")
    for cut in magic.count + 1..<whole.count where cut != magic.count + first.count {
      #expect(try count(Array(whole[..<cut])) == 0, "cut at \(cut) of \(whole.count)")
    }
    #expect(try count(magic + first + [0x85]) == 0, "a number cut short")
    // 1,000,000,000 nanoseconds: written as a number of five bytes.
    var tooMany = magic + first
    tooMany.replaceSubrange(magic.count + 11...magic.count + 11, with: [0x80, 0x94, 0xEB, 0xDC, 0x03])
    #expect(try count(tooMany) == 0)
    #expect(try count(magic + first + entry([0x61, 0xFF, 0x62])) == 0, "a path that is not UTF-8")
    #expect(try count(magic + first + entry(Array("é.yaml".utf8))) == 2, "a path that is UTF-8, not ASCII")
    #expect(try count(Array("confvault stat cache 2\n".utf8) + first) == 0, "another format")
  }

  @Test(
    "what replace keeps is found, before and after save and a new read; a file kept without a status is not"
  )
  func replaceAndSave() throws {
    let folder = NSTemporaryDirectory() + "confvault-stat-cache-\(UInt32.random(in: 0...UInt32.max))"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    func identity(_ index: Int) -> FileIdentity {
      FileIdentity(
        device: 3, inode: UInt64(index + 300), size: Int64(index),
        modified: timespec(tv_sec: 1_700_000_000 + index, tv_nsec: index),
        changed: timespec(tv_sec: 1_700_000_500, tv_nsec: 999_999_999))
    }
    // Out of path order, as no scan lists them; "b.yaml" is racy (not kept). Enough of them that
    // the file (about 1.5 MB) is written in more than one piece.
    let long = String(repeating: "n", count: 80)
    let paths = ["z.yaml", "a/x.yaml", "b.yaml", "a.yaml", "é.yaml"] + (0..<12_000).map { "many/\(long)-\($0).json" }
    let files = paths.enumerated().map { index, path in
      ManifestFile(path: path, size: Int64(index), mode: .regular, sha256: SHA256Hex.of(Data(path.utf8)))
    }
    let scannedFiles = paths.enumerated().map { index, path in
      var file = FolderFile(
        path: path, absolutePath: folder + "/" + path, mode: .regular, size: Int64(index), modificationTime: 0)
      file.identity = identity(index)
      return file
    }
    var cache = StatCache(path: folder + "/cache")
    #expect(cache.count == 0)
    cache.replace(with: files, scanned: scannedFiles, kept: paths.map { $0 != "b.yaml" })
    #expect(cache.count == paths.count - 1)
    func scanned(_ cache: StatCache) throws -> [String: SHA256Hex] {
      let sorted = paths.enumerated().sorted { EntryPath.byteOrder($0.element, $1.element) }
      let known = try cache.known(
        sorted.map { index, path in
          var file = FolderFile(
            path: path, absolutePath: folder + "/" + path, mode: .regular, size: Int64(index), modificationTime: 0)
          file.identity = identity(index)
          return file
        })
      var found: [String: SHA256Hex] = [:]
      for ((_, path), at) in zip(sorted, known) where at >= 0 { found[path] = cache.entry(at: Int(at)).sha256 }
      return found
    }
    let expected = Dictionary(
      uniqueKeysWithValues: paths.filter { $0 != "b.yaml" }.map { ($0, SHA256Hex.of(Data($0.utf8))) })
    #expect(try scanned(cache) == expected)
    try cache.save()
    let read = StatCache(path: folder + "/cache")
    #expect(read.count == paths.count - 1)
    let size = try #require(try FileManager.default.attributesOfItem(atPath: folder + "/cache")[.size] as? Int)
    #expect(size > 1 << 20)
    #expect(try scanned(read) == expected)
  }
  @Test("hashing through the cache keeps a file's status only when its read found the one the scan read")
  func keptStatuses() async throws {
    let folder = NSTemporaryDirectory() + "confvault-stat-cache-\(UInt32.random(in: 0...UInt32.max))"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    for name in ["a.yaml", "b.yaml", "c.yaml"] {
      try Data("\(name)\n".utf8).write(to: URL(fileURLWithPath: folder + "/" + name))
    }
    // Out of the racy window (their change times cannot be set back): only the statuses decide.
    try await Task.sleep(for: .seconds(FolderReading.racyWindow + 1))
    // The scan's statuses: "a.yaml" as it is; "b.yaml" as it was before an editor renamed another
    // file over it (another inode); "c.yaml" listed otherwise, with none.
    let scanned = try ConfigurationFolder.scan(folder)
    #expect(scanned.map(\.path) == ["a.yaml", "b.yaml", "c.yaml"])
    var files = scanned
    var before = try #require(files[1].identity)
    before.inode &+= 1
    files[1].identity = before
    files[2] = FolderFile(
      path: "c.yaml", absolutePath: folder + "/c.yaml", mode: .regular, size: 7, modificationTime: 1_700_000_000)
    var cache = StatCache(path: folder + "/cache")
    let hashed = try ConfigurationArchive.hash(files, cache: &cache)
    #expect(hashed.read == 3)
    #expect(hashed.files.map(\.sha256) == ["a.yaml", "b.yaml", "c.yaml"].map { SHA256Hex.of(Data("\($0)\n".utf8)) })
    #expect(cache.count == 1)
    try cache.save()
    // Read back, the cache knows "a.yaml" only: the others are read again.
    var read = StatCache(path: folder + "/cache")
    #expect(read.count == 1)
    #expect(try ConfigurationArchive.hash(scanned, cache: &read).read == 2)
    #expect(read.count == 3)
  }
}

extension StatCache {
  /// For each of `files`, the index of its entry in the cache as `lookUp` finds it; -1 for a file
  /// to read.
  fileprivate func known(_ files: [FolderFile]) throws -> [Int32] {
    var known: [Int32] = []
    try lookUp(files) { _, slot, _ in known.append(slot.map(Int32.init) ?? -1) }
    return known
  }
}
