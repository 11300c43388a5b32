import Crypto
import Foundation
import Testing

@testable import ConfvaultCore

/// The folders a flat file list is stored as, against the plain definitions: a folder's digest
/// hashes its entries' lines in name byte order, and every folder of every path is built once.
@Suite struct TreeNodeTests {
  /// The digest as defined: one `F <mode> <size> <blob> <name>` or `D <folder> <name>` line per
  /// entry, in name byte order.
  static func plainDigest(_ entries: [TreeNode.Entry]) -> Data {
    var text = ""
    for entry in entries.sorted(by: { EntryPath.byteOrder($0.name, $1.name) }) {
      switch entry {
      case .file(let name, let mode, let size, let blob): text += "F \(mode.rawValue) \(size) \(blob.value) \(name)\n"
      case .folder(let name, let node): text += "D \(hexString(node)) \(name)\n"
      }
    }
    return Data(SHA256.hash(data: Data(text.utf8)))
  }

  /// Each folder's digest, by path, built from the plain definition: a folder holds the files
  /// directly in it and the folders one level down.
  static func plainFolders(_ files: [ManifestFile]) -> [String: Data] {
    var folders = Set([""])
    for file in files {
      var folder = EntryPath.folder(of: file.path)
      while !folder.isEmpty {
        folders.insert(folder)
        folder = EntryPath.folder(of: folder)
      }
    }
    var digests: [String: Data] = [:]
    // Deepest first, so a folder's folders are known before it.
    func depth(_ folder: String) -> Int { folder.isEmpty ? -1 : folder.utf8.count { $0 == 0x2F } }
    for folder in folders.sorted(by: { depth($0) > depth($1) }) {
      var entries: [TreeNode.Entry] = files.filter { EntryPath.folder(of: $0.path) == folder }.map {
        .file(name: String(EntryPath.name(of: $0.path)), mode: $0.mode, size: $0.size, blob: $0.sha256)
      }
      for child in folders where !child.isEmpty && EntryPath.folder(of: child) == folder {
        entries.append(.folder(name: String(EntryPath.name(of: child)), node: digests[child]!))
      }
      digests[folder] = plainDigest(entries)
    }
    return digests
  }

  @Test("random trees build the folders the definition gives, each once, children before parents")
  func buildMatchesDefinition() {
    var generator = SeededGenerator(seed: 7)
    // Names that byte order puts between a folder and its files: `a-b` and `a.txt` sort before `a/`.
    let names = ["a", "b", "a-b", "a.txt", "a0", "é", "Z", "config.d", "x"]
    for round in 0..<300 {
      var paths = Set<String>()
      for _ in 0..<Int.random(in: 1...40, using: &generator) {
        let depth = Int.random(in: 1...4, using: &generator)
        paths.insert((0..<depth).map { _ in names.randomElement(using: &generator)! }.joined(separator: "/"))
      }
      // A path that is also a folder of another is no tree: those are left out.
      let tree = paths.filter { path in !paths.contains { $0.utf8.starts(with: (path + "/").utf8) } }
      // Sizes whose digits a digest spells: none, one and several digits, and the largest.
      let sizes: [Int64] = [0, 1, 9, 10, 99, 100, 12_345, 1 << 40, Int64.max]
      var files = tree.map { path in
        ManifestFile(
          path: path, size: sizes.randomElement(using: &generator)!, mode: path.hasSuffix("a") ? .executable : .regular,
          sha256: SHA256Hex.of(Data(path.utf8)))
      }
      files.shuffle(using: &generator)
      let sorted = files.sorted { EntryPath.byteOrder($0.path, $1.path) }
      let expected = Self.plainFolders(files)
      for input in [files, sorted] {
        let built = TreeNode.build(input)
        #expect(
          Dictionary(built.map { ($0.path, $0.digest) }, uniquingKeysWith: { a, _ in a }) == expected, "round \(round)")
        #expect(built.count == expected.count, "each folder once (round \(round))")
        #expect(built.last?.path == "")
        for (index, folder) in built.enumerated() {
          #expect(folder.node.digest == folder.digest)
          // A folder keeps indices, not entries: what it makes of them is the node.
          #expect(folder.entryCount == folder.node.entries.count)
          let blobs = folder.node.entries.compactMap { entry -> SHA256Hex? in
            if case .file(_, _, _, let blob) = entry { return blob } else { return nil }
          }
          #expect(folder.fileBlobs == blobs)
          let inside = built[(index + 1)...].filter {
            !folder.path.isEmpty && $0.path.utf8.starts(with: (folder.path + "/").utf8)
          }
          #expect(inside.isEmpty, "`\(folder.path)` comes after its folders (round \(round))")
        }
      }
    }
  }

  @Test(
    "a folder whose lines end at every byte around the end of the digest's buffer, and a line longer than all of it")
  func longLines() {
    // Lines are hashed 64 KiB at a time. A first line of every length from 230 bytes short of that
    // to one past it puts the end of the buffer at every byte of the lines after it.
    let buffer = 64 << 10
    let after: [TreeNode.Entry] = [
      .file(name: "b", mode: .regular, size: 1_234_567, blob: SHA256Hex.of(Data("b".utf8))),
      .folder(name: "c", node: Data(SHA256.hash(data: Data("c".utf8)))),
      .file(name: "d", mode: .executable, size: 0, blob: SHA256Hex.of(Data("d".utf8))),
    ]
    for length in (buffer - 230)...(buffer + 1) {
      // "F 0644 7 <64 digits> " and a newline are 75 bytes.
      let first = TreeNode.Entry.file(
        name: "a" + String(repeating: "x", count: length - 76), mode: .regular, size: 7,
        blob: SHA256Hex.of(Data()))
      let entries = [first] + after
      #expect(TreeNode.digest(ordered: entries) == Self.plainDigest(entries), "a first line of \(length) bytes")
    }
    // Not a name any path could hold, but the digest of a damaged record's entries is still taken.
    let long: [TreeNode.Entry] = [
      .file(name: "a", mode: .executable, size: 0, blob: SHA256Hex.of(Data())),
      .folder(name: String(repeating: "b", count: 70_000), node: Data(repeating: 7, count: 5)),
    ]
    #expect(TreeNode.digest(ordered: long) == Self.plainDigest(long))
  }

  @Test(
    "a version's tree gives the same folders built at once, built when first asked for, and built again after they were let go"
  )
  func versionTree() {
    let files = ["a/b.yaml", "a/c/d.json", "e.txt", "a-b", "é/f"].map { path in
      ManifestFile(path: path, size: Int64(path.utf8.count), mode: .regular, sha256: SHA256Hex.of(Data(path.utf8)))
    }
    let expected = TreeNode.build(files).map { "\($0.path) \(hexString($0.digest))" }
    let eager = VersionTree(files: files)
    #expect(eager.digest == TreeDigest(files: files))
    #expect(eager.folders.map { "\($0.path) \(hexString($0.digest))" } == expected)
    eager.releaseFolders()
    #expect(eager.folders.map { "\($0.path) \(hexString($0.digest))" } == expected, "built again")
    #expect(eager.root == TreeNode.build(files).last!.digest)
    let lazy = VersionTree(files: files, digest: TreeDigest(files: files))
    #expect(lazy.folders.map { "\($0.path) \(hexString($0.digest))" } == expected)
  }

  @Test("a '/' that a combining mark joins splits nothing, as in every store written before; such a name reads back")
  func joinedSlash() throws {
    let joined = "a/\u{301}x"  // "/" and U+0301 make one character
    let files = ["a/b.json", joined + "/f.json", "c/\u{301}.json"].map { path in
      ManifestFile(path: path, size: 1, mode: .regular, sha256: SHA256Hex.of(Data(path.utf8)))
    }
    #expect(
      EntryPath.folder(of: joined + "/f.json") == joined && EntryPath.name(of: "c/\u{301}.json") == "c/\u{301}.json")
    let built = TreeNode.build(files)
    #expect(Set(built.map(\.path)) == ["", "a", joined])
    let root = try #require(built.last)
    #expect(Set(root.node.entries.map(\.name)) == ["a", joined, "c/\u{301}.json"])
    let record = FolderRecord.encode(root.node, digest: root.digest, base: nil)
    let decoded = try FolderRecord.decode(record, base: nil)
    #expect(Set(decoded.map(\.name)) == Set(root.node.entries.map(\.name)))
  }

  @Test("a folder whose name starts with a combining mark packs and unpacks: on disk, '/' bytes separate names")
  func joinedSlashOnDisk() throws {
    let root = NSTemporaryDirectory() + "confvault-joined-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: root) }
    let folder = root + "/in/a/\u{301}x"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    try Data("{}".utf8).write(to: URL(fileURLWithPath: folder + "/f.json"))
    let archive = root + "/out.tar"
    _ = try ConfigurationArchive.pack(
      folder: root + "/in", app: nil, environment: nil, compression: .none, to: .file(archive, replaceExisting: false))
    let contents = try ConfigurationArchive.unpack(.file(archive), to: root + "/out")
    #expect(contents.files.map(\.path) == ["a/\u{301}x/f.json"])
    #expect(FileManager.default.contents(atPath: root + "/out/a/\u{301}x/f.json") == Data("{}".utf8))
  }

  @Test("check orders a folder's entries as paths: a folder's name followed by '/', with no string made")
  func pathOrder() {
    var generator = SeededGenerator(seed: 11)
    let names = ["a", "a-b", "a.b", "a0", "ab", "b", "é", "a/", "", "z"]  // "a/" and "" only compared, never stored
    func key(_ entry: TreeNode.Entry) -> String {
      if case .folder(let name, _) = entry { return name + "/" }
      return entry.name
    }
    for _ in 0..<2_000 {
      let pick = { () -> TreeNode.Entry in
        let name = names.randomElement(using: &generator)!
        return Bool.random(using: &generator)
          ? .folder(name: name, node: Data()) : .file(name: name, mode: .regular, size: 0, blob: SHA256Hex.of(Data()))
      }
      let (a, b) = (pick(), pick())
      #expect(StoredTreeCheck.pathOrder(a, b) == EntryPath.byteOrder(key(a), key(b)), "\(a) \(b)")
    }
  }

  @Test("a digest reads back from its 64 lowercase hex digits, and nothing else reads as one")
  func hexDigests() {
    var generator = SeededGenerator(seed: 3)
    for _ in 0..<500 {
      let digest = SHA256Hex.of(Data((0..<8).map { _ in UInt8.random(in: 0...255, using: &generator) }))
      #expect(SHA256Hex(digest.value) == digest)
      #expect(SHA256Hex(digest.value.uppercased()) == (digest.value.uppercased() == digest.value ? digest : nil))
    }
    let good = String(repeating: "0123456789abcdef", count: 4)
    #expect(SHA256Hex(good)?.value == good)
    let abc = SHA256Hex.of(Data("abc".utf8))
    #expect(abc.value == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    var appended: [UInt8] = [0x2A]
    abc.appendHex(to: &appended)
    #expect(appended == [0x2A] + Array(abc.value.utf8), "appended after what the buffer held")
    let shortened = String(good.dropLast())
    let bads: [String] = [
      "", shortened, good + "0", "g" + String(good.dropFirst()), shortened + "/", shortened + ":", shortened + "`",
      shortened + "G", shortened + "é",
    ]
    for bad in bads {
      #expect(SHA256Hex(bad) == nil, "\(bad)")
    }
  }

  @Test("an empty list is an empty root; a digest does not depend on the order of its entries")
  func edges() {
    let empty = TreeNode.build([])
    #expect(empty.count == 1 && empty[0].path == "" && empty[0].digest == Self.plainDigest([]))
    let entries: [TreeNode.Entry] = [
      .file(name: "b", mode: .regular, size: 12_345_678_901, blob: SHA256Hex.of(Data("b".utf8))),
      .folder(name: "a", node: Data(repeating: 7, count: 32)),
      .file(name: "a.txt", mode: .executable, size: 0, blob: SHA256Hex.of(Data())),
    ]
    #expect(TreeNode(entries: entries).digest == Self.plainDigest(entries))
    #expect(TreeNode(entries: entries.reversed()).digest == Self.plainDigest(entries))
  }
}
