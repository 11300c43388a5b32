import Crypto
import Foundation
import Testing

@testable import ConfvaultCore

/// `check`'s sums of versions' trees, against the manifest's definition of a tree digest, and what
/// it keeps between versions.
@Suite struct StoredTreeCheckTests {
  /// Folder records of every version pushed so far, by digest, as a store holds them.
  final class Records {
    var byDigest: [Data: StoredFolder] = [:]

    /// Stores the folders of `files` and returns the root's digest.
    func store(_ files: [ManifestFile]) -> Data {
      let folders = TreeNode.build(files)
      for folder in folders where byDigest[folder.digest] == nil {
        byDigest[folder.digest] = FolderRecord.encode(folder.node, digest: folder.digest, base: nil)
      }
      return folders.last!.digest
    }

    var reader: FolderReader { FolderReader(shared: false) { [self] in byDigest[$0] } }
  }

  /// 1,000 files: 40 folders of 24, a folder three deep, and files at the root.
  static func history(versions: Int) -> [[ManifestFile]] {
    func file(_ path: String, _ content: String) -> ManifestFile {
      ManifestFile(
        path: path, size: Int64(content.utf8.count), mode: path.hasSuffix(".sh") ? .executable : .regular,
        sha256: SHA256Hex.of(Data(content.utf8)))
    }
    var files = (0..<40).flatMap { folder in
      (0..<24).map { index in file("team-\(folder)/service-\(index).yaml", "replicas: \(index)") }
    }
    files += (0..<20).map { file("a/b/c/deep-\($0).sh", "echo \($0)") }
    files += (0..<20).map { file("root-\($0).json", "{}") }
    var history = [files]
    for number in 1..<versions {
      let changed = number * 37 % files.count
      files[changed] = file(files[changed].path, "changed in \(number)")
      history.append(files)
    }
    return history
  }

  @Test("each version's tree digest, file count and size are those its manifest would give")
  func summaries() throws {
    let records = Records()
    var check = StoredTreeCheck(reader: records.reader)
    for files in Self.history(versions: 30) {
      let summary = try check.summary(root: records.store(files))
      #expect(summary.digest == TreeDigest(files: files))
      #expect(summary.files == files.count)
      #expect(summary.size == files.reduce(0) { $0 + $1.size })
    }
  }

  /// Trees whose paths do not sort as their folders' names do.
  static let pathOrders: [[String]] = [
    // A record lists `a`, `a+b`, `a-c`, `a.d`, `a0`; the manifest sorts `a/x` after `a.d` ("/" is
    // after "+", "-" and "."), before `a0`. The same goes one level down, and for `b/` after `b-1`.
    ["a+b", "a-c/x", "a.d", "a/x", "a/y/z", "a/y-1", "a/y.2", "a0", "b-1/x", "b/x", "c"],
    // A "/" that a combining mark joins is part of a name: the folders `a` and `a/\u{301}x` are
    // siblings, but the manifest puts `a/\u{301}x/f.json` (bytes 2F CC) between `a/b.json` (2F 62)
    // and `a/日.json` (2F E6), so the lines of two folders mix.
    ["a/b.json", "a/\u{301}x/f.json", "a/\u{301}x/g/h.json", "a/日.json", "a/日/i.json", "b.json"],
  ]

  @Test(
    "a folder whose name begins a sibling's, or holds a joined '/': its lines come where its paths sort",
    arguments: pathOrders)
  func pathOrder(paths: [String]) throws {
    let records = Records()
    var check = StoredTreeCheck(reader: records.reader)
    let files = paths.map { path in
      ManifestFile(path: path, size: 3, mode: .regular, sha256: SHA256Hex.of(Data(path.utf8)))
    }
    let summary = try check.summary(root: records.store(files))
    #expect(summary.digest == TreeDigest(files: files))
    #expect(summary.files == paths.count)
  }

  @Test("a one-file version makes the lines of its changed folders only, not of every folder again")
  func keptLines() throws {
    let records = Records()
    // Less than two versions' lines (about 90 KB each): counting a root's lines as its own, as
    // well as its folders', emptied what was kept at every version.
    var check = StoredTreeCheck(reader: records.reader, linesBudget: 160 << 10)
    let history = Self.history(versions: 30)
    for files in history {
      #expect(try check.summary(root: records.store(files)).digest == TreeDigest(files: files))
      // What was kept before a clearing is not counted by the subtrees kept after it.
      #expect(check.keptBytes <= 160 << 10, "\(check.keptBytes) bytes kept")
    }
    let everyFolder = 1 + 40 + 3
    #expect(check.subtreesMade < history.count * everyFolder / 4, "\(check.subtreesMade) subtrees made")
  }

  @Test("what is kept between versions stays within its budget, also above a folder too large to keep")
  func keptWithinBudget() throws {
    let records = Records()
    let budget = 160 << 10
    var check = StoredTreeCheck(reader: records.reader, linesBudget: budget)
    // 600 files in one folder: about 57 KB of lines, more than a quarter of the budget.
    var files = (0..<600).map { index in
      ManifestFile(
        path: "top/big/item-\(index).yaml", size: 1, mode: .regular, sha256: SHA256Hex.of(Data("\(index)".utf8)))
    }
    files += Self.history(versions: 1)[0]
    for number in 0..<20 {
      files[number * 31 % 600].sha256 = SHA256Hex.of(Data("changed in \(number)".utf8))
      #expect(try check.summary(root: records.store(files)).digest == TreeDigest(files: files))
      #expect(check.keptBytes <= budget, "version \(number): \(check.keptBytes) bytes kept")
    }
  }

  @Test("the bytes two pieces of lines begin with in common, eight at a time and then one by one")
  func commonPrefix() {
    func common(_ a: [UInt8], _ b: [UInt8]) -> Int {
      a.withUnsafeBytes { x in b.withUnsafeBytes { y in StoredTreeCheck.commonPrefix(x, y) } }
    }
    let piece = (0..<40).map { UInt8($0) }
    for change in [0, 1, 7, 8, 9, 15, 16, 39] {
      var changed = piece
      changed[change] &+= 1
      #expect(common(piece, changed) == change, "changed at \(change)")
    }
    #expect(common(piece, piece) == 40)
    #expect(common(piece, Array(piece.prefix(17))) == 17)
    #expect(common(Array(piece.prefix(8)), piece) == 8)
    #expect(common([], piece) == 0)
  }

  /// `bytes` as lines of a tree: pieces of random lengths, cut anywhere, in folders nested at random.
  static func randomTree(_ bytes: [UInt8], using generator: inout some RandomNumberGenerator) -> TreeLines {
    var parts: [TreeLines.Piece] = []
    var start = 0
    while start < bytes.count {
      let end = min(bytes.count, start + Int.random(in: 1...3_000, using: &generator))
      parts.append(.bytes(Data(bytes[start..<end])))
      start = end
      // Now and then, the last few parts become a folder's.
      if Int.random(in: 0..<3, using: &generator) == 0 {
        let count = Int.random(in: 1...parts.count, using: &generator)
        let folder = TreeLines(pieces: Array(parts.suffix(count)), files: 0, size: 0)
        parts.removeLast(count)
        parts.append(.folder(folder))
      }
    }
    return TreeLines(pieces: parts, files: 0, size: 0)
  }

  @Test("two trees' lines begin with at most the bytes they have in common, all of them when made alike")
  func commonPrefixOfTrees() {
    var generator = SeededGenerator(seed: 0xC0FF_EE12)
    for round in 0..<200 {
      let bytes = (0..<Int.random(in: 1...9_000, using: &generator)).map { _ in
        UInt8.random(in: 0...3, using: &generator)
      }
      var changed = bytes
      let change = Int.random(in: 0..<bytes.count, using: &generator)
      changed[change] &+= 1
      // Made alike: the same cuts and folders, one byte changed; made apart: cut elsewhere.
      let tree = Self.randomTree(bytes, using: &generator)
      func remade(_ lines: TreeLines) -> TreeLines {
        var offset = 0
        func copy(_ lines: TreeLines) -> TreeLines {
          TreeLines(
            pieces: lines.pieces.map { part in
              switch part {
              case .bytes(let piece):
                defer { offset += piece.count }
                return .bytes(Data(changed[offset..<offset + piece.count]))
              case .folder(let folder): return .folder(copy(folder))
              }
            }, files: 0, size: 0)
        }
        return copy(lines)
      }
      let alike = remade(tree)
      let apart = Self.randomTree(changed, using: &generator)
      let same = zip(bytes, changed).prefix { $0 == $1 }.count
      #expect(StoredTreeCheck.commonPrefix(tree, alike) == (same, false), "round \(round)")
      #expect(StoredTreeCheck.commonPrefix(alike, tree).bytes == same, "round \(round)")
      #expect(StoredTreeCheck.commonPrefix(tree, apart).bytes <= same, "round \(round)")
      #expect(StoredTreeCheck.commonPrefix(tree, tree) == (bytes.count, true))
      #expect(StoredTreeCheck.commonPrefix(alike, remade(tree)) == (bytes.count, true), "equal bytes, other objects")
    }
  }

  /// The bytes of `lines`, parts and folders in order.
  static func flattened(_ lines: TreeLines) -> [UInt8] {
    lines.pieces.flatMap { part -> [UInt8] in
      switch part {
      case .bytes(let piece): Array(piece)
      case .folder(let folder): flattened(folder)
      }
    }
  }

  @Test("trees whose folders begin alike but hold more or fewer parts share no more than their bytes do")
  func commonPrefixAcrossShapes() {
    func part(_ text: String) -> TreeLines.Piece { .bytes(Data(text.utf8)) }
    func folder(_ parts: TreeLines.Piece...) -> TreeLines.Piece { .folder(TreeLines(pieces: parts, files: 0, size: 0)) }
    let (a, g, r) = (part("100644 a/1\n"), part("100644 a/2\n"), part("100644 r\n"))
    // A folder that lost its last part (or gained one), then the same sibling; a folder against
    // its own lines outside a folder; an empty tree.
    let pairs: [([TreeLines.Piece], [TreeLines.Piece])] = [
      ([folder(a, g), r], [folder(a), r]),
      ([folder(a), r], [folder(a, g), r]),
      ([folder(a), folder(r)], [folder(a, r)]),
      ([a, r], [folder(a), r]),
      ([folder(folder(a), g), r], [folder(folder(a, g)), r]),
      ([], [a]),
    ]
    for (before, after) in pairs {
      let (x, y) = (TreeLines(pieces: before, files: 0, size: 0), TreeLines(pieces: after, files: 0, size: 0))
      let (p, q) = (Self.flattened(x), Self.flattened(y))
      let same = zip(p, q).prefix { $0 == $1 }.count
      for (first, second) in [(x, y), (y, x)] {
        let common = StoredTreeCheck.commonPrefix(first, second)
        #expect(common.bytes <= same, "\(p.count) and \(q.count) bytes, \(same) in common")
        // Whole only for equal bytes (equal bytes cut otherwise may be told apart: less is hashed again).
        #expect(!common.whole || p == q)
      }
    }
  }

  /// Every way the lines hasher can run here: two trees at once on each of two workers (the
  /// default), one tree on each, one worker alone; with the SHA extensions and without.
  static let hashings = SHA256Blocks.Compression.available.flatMap { compression in
    [(2, 2), (2, 1), (1, 2), (1, 1)].map {
      LinesHasher.Configuration(compression: compression, workers: $0, streams: $1)
    }
  }

  @Test(
    "the lines hasher resumes at a checkpoint at or before the first changed byte, also next to one, every way it runs",
    arguments: hashings)
  func checkpoints(hashing: LinesHasher.Configuration) throws {
    var generator = SeededGenerator(seed: 0x4B1D_0004)
    let hasher = LinesHasher(hashing)
    let size = 3 * LinesHasher.checkpointBytes + 100
    var lines = (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
    var last: [UInt8] = []
    // An empty tree first, which the next resumes from.
    hasher.hash(root: Data("empty".utf8), lines: TreeLines(pieces: [], files: 0, size: 0), sameBytes: 0)
    var expected = [Data("empty".utf8): hexString(SHA256.hash(data: Data()))]
    // Changes at the first byte, next to and on each checkpoint, at the last byte; and trees that
    // shrink and grow.
    let step = LinesHasher.checkpointBytes
    let changes = [0, 1, step - 1, step, step + 1, 2 * step, size - 1] + [size / 2, size + 4_000, step]
    for (index, change) in changes.enumerated() {
      if index == 7 { lines.removeLast(size / 2) }
      if index == 8 { lines += (0..<5_000).map { _ in UInt8.random(in: 0...255, using: &generator) } }
      if index == 9 { lines.removeLast(lines.count - step) }
      if change < lines.count { lines[change] &+= 1 }
      // Every other tree one run of bytes, read where it lies a checkpoint at a time.
      let tree =
        index % 2 == 1
        ? TreeLines(pieces: [.bytes(Data(lines))], files: 0, size: 0) : Self.randomTree(lines, using: &generator)
      #expect(tree.byteCount == lines.count)
      let same = zip(last, lines).prefix { $0 == $1 }.count
      // The exact count of bytes in common, and one too low, as a producer may give.
      for sameBytes in [same, max(same - 1, 0)] {
        let root = Data("\(index) \(sameBytes == same)".utf8)
        hasher.hash(root: root, lines: tree, sameBytes: sameBytes)
        expected[root] = hexString(SHA256.hash(data: lines))
      }
      last = lines
    }
    for (root, digest) in expected {
      #expect(hasher.digest(root: root).value == "sha256:" + digest, "\(String(decoding: root, as: UTF8.self))")
    }
  }

  @Test(
    "versions whose tree digest is wrong are named once their lines are hashed, in order, also a tree met again",
    arguments: [
      (16_384, LinesHasher.Configuration()), (3, LinesHasher.Configuration()),
      (16_384, LinesHasher.Configuration(workers: 2, streams: 1)),
      (3, LinesHasher.Configuration(compression: .library, workers: 1, streams: 1)),
    ])
  func wrongDigests(summariesKept: Int, hashing: LinesHasher.Configuration) throws {
    let records = Records()
    // With 3, the trees summed up are forgotten every third new tree, and trees met again are
    // summed up again.
    var check = StoredTreeCheck(
      reader: records.reader, linesBudget: 16 << 20, summariesKept: summariesKept, hasher: LinesHasher(hashing))
    // More versions than the trees waiting for a worker may be.
    let history = Self.history(versions: 300)
    let wrong = TreeDigest(files: [])
    let wrongNumbers = [3, 7, 200, 301, 302]
    // Versions 301 and 302 have the trees of versions 1 and 300 again, as restores do.
    let trees = history + [history[0], history[299]]
    var previous = 0
    var problems: [String] = []
    for (index, files) in trees.enumerated() {
      let number = index + 1
      let version = Version(
        app: "shop", number: number, environment: "dev", author: "ana", createdAt: Date(), comment: "",
        origin: .push, parent: number > 1 ? number - 1 : nil, restoredFrom: nil, importedFrom: nil,
        backup: false, syncedAt: nil,
        treeDigest: wrongNumbers.contains(number) ? wrong : TreeDigest(files: files), fileCount: files.count,
        totalSize: files.reduce(0) { $0 + $1.size })
      problems += try check.checkVersion(
        app: "shop", number: number, root: records.store(files), previous: &previous
      ) { version }
    }
    #expect(problems.isEmpty, "\(problems)")
    problems = check.finishVersions()
    #expect(problems.count == wrongNumbers.count, "\(problems)")
    for (problem, number) in zip(problems, wrongNumbers) {
      #expect(problem.hasPrefix("app 'shop' version \(number): tree digest \(wrong) does not match"), "\(problem)")
    }
  }
}

extension TreeLines {
  /// A piece of a subtree's lines as these tests write them: bytes, or a folder's lines.
  enum Piece {
    case bytes(Data)
    case folder(TreeLines)
  }

  /// Lines made of `pieces`, each run of bytes a part of its own.
  convenience init(pieces: [Piece], files: Int, size: Int64) {
    var own: [UInt8] = []
    let parts = pieces.map { piece -> Part in
      switch piece {
      case .bytes(let bytes):
        own += bytes
        return .bytes(own.count - bytes.count..<own.count)
      case .folder(let folder): return .folder(folder)
      }
    }
    self.init(own: own, parts: parts, files: files, size: size)
  }

  /// The parts, each run of bytes as its own piece.
  var pieces: [Piece] {
    parts.map { part in
      switch part {
      case .bytes(let range): .bytes(Data(UnsafeRawBufferPointer(rebasing: own[range])))
      case .folder(let folder): .folder(folder)
      }
    }
  }
}
