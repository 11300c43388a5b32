import ConfvaultCore
import Foundation
import Testing

/// Folder records decode to exactly the entries they were encoded from, whole or as a delta.
@Suite struct FolderRecordTests {
  /// A deterministic generator, so a failure can be replayed.
  struct Generator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      return state >> 11 ^ state << 7
    }
  }

  static let names = [
    "a", "a.yaml", "a0", "A", "b", "bb", "b-1", "b_1", "zeta.json", "z", "é.yaml", "日本.ini", "~tilde", "0",
    "config", "config.d", "config.yaml", "x y", "Z", "ü",
  ]

  private func entry(_ name: String, _ generator: inout Generator) -> TreeNode.Entry {
    if Int.random(in: 0..<5, using: &generator) == 0 {
      return .folder(name: name, node: Data((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }))
    }
    let content = Data("\(name) \(UInt64.random(in: 0...9, using: &generator))".utf8)
    return .file(
      name: name, mode: Bool.random(using: &generator) ? .regular : .executable, size: Int64(content.count),
      blob: SHA256Hex.of(content))
  }

  private func sorted(_ entries: [TreeNode.Entry]) -> [TreeNode.Entry] {
    entries.sorted { EntryPath.byteOrder($0.name, $1.name) }
  }

  @Test("a delta with names removed, replaced and added before, between and after its base's decodes exactly")
  func deltasDecodeExactly() throws {
    var generator = Generator(state: 42)
    var deltas = 0
    for _ in 0..<2_000 {
      let baseNames = Self.names.filter { _ in Int.random(in: 0..<3, using: &generator) > 0 }
      let base = sorted(baseNames.map { entry($0, &generator) })
      var entries: [String: TreeNode.Entry] = Dictionary(uniqueKeysWithValues: base.map { ($0.name, $0) })
      for name in Self.names {
        switch Int.random(in: 0..<12, using: &generator) {
        case 0: entries[name] = nil
        case 1: entries[name] = entry(name, &generator)
        default: break
        }
      }
      let node = TreeNode(entries: Array(entries.values))
      let baseDigest = Data(repeating: 1, count: 32)
      let record = FolderRecord.encode(node, digest: node.digest, base: (baseDigest, 3, base))
      if record.base != nil {
        deltas += 1
        #expect(record.depth == 4)
      }
      #expect(try FolderRecord.decode(record, base: base) == sorted(node.entries), "\(node.entries.map(\.name))")
    }
    #expect(deltas > 1_000, "most changes are small enough to be deltas")
  }

  @Test("a delta that removes a name its base lacks is damaged, named in the error")
  func removingAnAbsentName() throws {
    var generator = Generator(state: 7)
    let base = sorted(["a", "b", "c", "d", "e", "f", "g", "h"].map { entry($0, &generator) })
    let node = TreeNode(entries: Array(base.dropFirst()))
    let record = FolderRecord.encode(node, digest: node.digest, base: (Data(repeating: 1, count: 32), 0, base))
    #expect(record.base != nil)
    // Read against a base without `a`, the record removes a name that is not there.
    let error = #expect(throws: OperationError.self) {
      try FolderRecord.decode(record, base: Array(base.dropFirst()))
    }
    #expect(error?.message.contains("removes `a`, not in its base") == true, "\(String(describing: error))")
  }

  /// The bytes of a record of format 1, written by hand: for a delta, the names it removes, then its
  /// entries (each a kind, a name, and a size and blob or a folder's digest).
  private func record(removing removed: [String]? = nil, _ entries: [TreeNode.Entry], trailing: [UInt8] = [])
    -> StoredFolder
  {
    func name(_ text: String) -> [UInt8] { [UInt8(text.utf8.count)] + Array(text.utf8) }
    var bytes: [UInt8] = [1]
    if let removed { bytes += [UInt8(removed.count)] + removed.flatMap(name) }
    bytes.append(UInt8(entries.count))
    for entry in entries {
      switch entry {
      case .file(let file, let mode, let size, let blob):
        bytes += [mode == .executable ? 1 : 0] + name(file) + [UInt8(size)] + Array(blob.bytes)
      case .folder(let folder, let node):
        bytes += [2] + name(folder) + Array(node)
      }
    }
    return StoredFolder(
      digest: Data(repeating: 9, count: 32), base: removed == nil ? nil : Data(repeating: 1, count: 32),
      depth: removed == nil ? 0 : 1, compressed: false, data: Data(bytes + trailing))
  }

  @Test("a record that lists its entries out of order or a name twice decodes in name order, the last of a name kept")
  func outOfOrder() throws {
    func file(_ name: String, _ content: String) -> TreeNode.Entry {
      .file(name: name, mode: .regular, size: 1, blob: SHA256Hex.of(Data(content.utf8)))
    }
    let written = [file("b", "1"), file("a", "2"), file("b", "3")]
    let stored = record(written)
    #expect(try FolderRecord.decode(stored, base: nil) == [file("a", "2"), file("b", "3")])
    #expect(try FolderRecord.namedEntries(stored) == written, "what it names itself, as written")
  }

  @Test(
    "what a record names itself is refused, as its decode is, when it removes a name twice or has bytes after its end")
  func namedEntriesOfDamagedRecords() throws {
    let entry = TreeNode.Entry.file(name: "x", mode: .regular, size: 1, blob: SHA256Hex.of(Data("x".utf8)))
    #expect(try FolderRecord.namedEntries(record(removing: ["a"], [entry])) == [entry])
    for (damaged, problem) in [
      (record(removing: ["a", "a"], [entry]), "removes `a` twice"),
      (record([entry], trailing: [0]), "bytes after its last entry"),
    ] {
      let error = #expect(throws: OperationError.self) { try FolderRecord.namedEntries(damaged) }
      #expect(error?.message.contains(problem) == true, "\(String(describing: error))")
      #expect(throws: OperationError.self) { try FolderRecord.namedBlobs(damaged) }
    }
  }
}
