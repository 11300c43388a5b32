import Crypto
import Foundation
import Synchronization

/// A version's files with what storing them takes, made once: the tree's digest, and its folders
/// (`TreeNode.build`). A push decides on the digest, asks the store which of the folders it lacks
/// (`VersionStore.missingBlobs(inTree:)`) and stores those, all from one build.
///
/// A push or import of many new files lets the folders go while it stores their contents
/// (`releaseFolders`), and they are built again when the store asks for them: they are not held
/// beside the contents being stored. Push, import and restore let the whole tree go before the list
/// of changes is made once the version is added.
public final class VersionTree: Sendable {
  public let files: [ManifestFile]
  /// The digest of `files` (`TreeDigest`), computed from them or checked against them.
  public let digest: TreeDigest
  private let built: Mutex<[TreeFolder]?>

  /// The tree of `files`: its digest and its folders are made side by side, on two cores.
  public init(files: [ManifestFile]) {
    let digest = ResultSlots<TreeDigest>(count: 1)
    let folders = ResultSlots<[TreeFolder]>(count: 1)
    // The order is checked once for both.
    let sorted = files.inPathOrder
    DispatchQueue.concurrentPerform(iterations: 2) { part in
      if part == 0 {
        digest.set(0) { TreeDigest(sortedFiles: sorted) }
      } else {
        folders.set(0) { TreeNode.build(pathOrdered: sorted) }
      }
    }
    self.files = files
    // Neither throws.
    self.digest = try! digest.values()[0]
    built = Mutex(try! folders.values()[0])
  }

  /// The tree of `files`, whose digest `digest` is known already (an archive's, checked against its
  /// files when it was read); its folders are built when first asked for.
  init(files: [ManifestFile], digest: TreeDigest) {
    self.files = files
    self.digest = digest
    built = Mutex(nil)
  }

  /// Its folders, children before parents, the root (path "") last.
  public var folders: [TreeFolder] {
    built.withLock { built in
      if let folders = built { return folders }
      let folders = TreeNode.build(files)
      built = folders
      return folders
    }
  }

  /// The root folder's digest.
  public var root: Data {
    let folders = folders
    return folders[folders.count - 1].digest
  }

  /// Lets the folders go until they are asked for again.
  public func releaseFolders() {
    built.withLock { $0 = nil }
  }
}

/// A folder of a stored tree: its entries, and a digest over them, as git stores trees.
///
/// Versions share every folder that did not change, so 200 versions of a 20,000-file tree that each
/// change one file store a handful of new folders each, and a diff skips every folder whose digest
/// is the same on both sides.
public struct TreeNode: Sendable {
  public enum Entry: Sendable, Equatable {
    case file(name: String, mode: FileMode, size: Int64, blob: SHA256Hex)
    case folder(name: String, node: Data)

    /// The entry as the folder or the file it is at `path`.
    public static func split(_ entry: Entry?, at path: String) -> (folder: Data?, file: ManifestFile?) {
      switch entry {
      case .file(_, let mode, let size, let blob):
        return (nil, ManifestFile(path: path, size: size, mode: mode, sha256: blob))
      case .folder(_, let node): return (node, nil)
      case nil: return (nil, nil)
      }
    }

    public var name: String {
      switch self {
      case .file(let name, _, _, _), .folder(let name, _): return name
      }
    }
  }

  public var entries: [Entry]

  /// As deep as a stored path can go (each level takes at least two of its at most 1,024 bytes): a
  /// walk that goes deeper is in a damaged store whose folders loop.
  public static let deepestFolder = 512

  /// The error of a walk that went deeper than `deepestFolder` below `digest`.
  public static func tooDeep(_ digest: Data) -> OperationError {
    OperationError(
      .internal,
      "folder \(hexString(digest)) is damaged in the store: its folders nest deeper than any path (they loop)",
      hint: .runCheck)
  }

  public init(entries: [Entry]) { self.entries = entries }

  /// The digest that names this folder: SHA-256 over its entries in name byte order, one line each,
  /// `F <mode> <size> <blob> <name>` or `D <folder digest> <name>`.
  public var digest: Data {
    // Compared by index: a loop over pairs copied every entry.
    let inOrder = entries.indices.dropFirst().allSatisfy {
      !EntryPath.byteOrder(entries[$0].name, entries[$0 - 1].name)
    }
    return TreeNode.digest(ordered: inOrder ? entries : entries.sorted { EntryPath.byteOrder($0.name, $1.name) })
  }

  /// The digest of a folder whose `entries` are in name byte order, as a stored record's decode.
  static func digest(ordered entries: [Entry]) -> Data {
    var lines = LineHashing()
    for entry in entries {
      switch entry {
      case .file(let name, let mode, let size, let blob):
        EntryPath.withBytes(name) { writeFileLine(&lines, mode: mode, size: size, blob: blob, name: $0) }
      case .folder(let name, let node):
        writeFolderLine(&lines, node: node, name: name)
      }
    }
    return lines.finish()
  }

  /// The line of a file named by `name`'s bytes in a folder's digest.
  static func writeFileLine(
    _ lines: inout LineHashing, mode: FileMode, size: Int64, blob: SHA256Hex, name: UnsafeBufferPointer<UInt8>
  ) {
    lines.write("F ")
    lines.write(mode.rawValue)
    lines.write(" ")
    lines.writeDecimal(size)
    lines.write(" ")
    lines.writeHex(blob)
    lines.write(" ")
    lines.write(UnsafeRawBufferPointer(name))
    lines.write("\n")
  }

  /// The line of a folder in a folder's digest.
  static func writeFolderLine(_ lines: inout LineHashing, node: Data, name: String) {
    lines.write("D ")
    lines.writeHex(node)
    lines.write(" ")
    lines.write(name)
    lines.write("\n")
  }

  /// Builds the folders of a flat file list, children before parents, the root (path "") last.
  public static func build(_ files: [ManifestFile]) -> [TreeFolder] {
    build(pathOrdered: files.inPathOrder)
  }

  /// The folders of `files`, which are in path byte order, as `build(_:)`.
  static func build(pathOrdered files: [ManifestFile]) -> [TreeFolder] {
    // A `/` joined by a combining mark splits nothing (see `EntryPath.folder(of:)`): such paths
    // are built by characters, as they always were, so that their folders keep their digests.
    guard files.indices.allSatisfy({ EntryPath.slashesStandAlone(files[$0].path) }) else {
      return build(byCharacters: files)
    }
    return build(inOrder: files)
  }

  private static func build(inOrder files: [ManifestFile]) -> [TreeFolder] {
    // In path byte order, the files under a folder come together: the folders open along the
    // current file's path are a stack, each closed (and its digest computed) when the files leave it.
    // A folder keeps its entries as indices into `files` and its folders' names and digests, not as
    // entries: a first push of 100,000 files held 16 MB of entries and names beside the files.
    var ordered: [TreeFolder] = []
    // Each open folder's entries, and whether they are in name byte order. Entries come in that
    // order but one: a folder is added when it closes, after the entries (files or folders) whose
    // names are its name and a byte below "/" ("b.json" and "b-x/…" before "b/…"), which sort
    // after it by name. Only then is the parent's digest taken over its entries sorted; no other
    // folder's entries are compared.
    var open: [(path: String, name: String, entries: TreeFolder.Entries, inOrder: Bool)] = [
      ("", "", TreeFolder.Entries(files: files), true)
    ]
    func closeFolder() {
      let folder = open.removeLast()
      let digest = folder.entries.digest(inOrder: folder.inOrder)
      ordered.append(TreeFolder(path: folder.path, digest: digest, entries: folder.entries))
      let parent = open.count - 1
      if let last = open[parent].entries.lastName, EntryPath.byteOrder(folder.name, last) {
        open[parent].inOrder = false
      }
      open[parent].entries.appendFolder(name: folder.name, digest: digest)
    }
    for index in files.indices {
      let path = files[index].path
      // Every `/` stands alone (see `build(pathOrdered:)`): the folder is the bytes before the last one.
      let folderLength = EntryPath.lastSlash(path) ?? 0
      if !EntryPath.hasPrefix(path, length: folderLength, equalTo: open[open.count - 1].path) {
        let folder = String(Substring(path.utf8.prefix(folderLength)))
        while open.count > 1 && !isInside(folder, open[open.count - 1].path) { closeFolder() }
        let top = open[open.count - 1].path
        // Below `top`: past its name and the "/" after it (both ASCII-bounded).
        let rest =
          top.isEmpty
          ? folder[...]
          : folder == top ? ""[...] : folder[folder.utf8.index(folder.startIndex, offsetBy: top.utf8.count + 1)...]
        for bytes in rest.utf8.split(separator: 0x2F) {
          let name = String(Substring(bytes))
          let parent = open[open.count - 1].path
          open.append((parent.isEmpty ? name : parent + "/" + name, name, TreeFolder.Entries(files: files), true))
        }
      }
      open[open.count - 1].entries.appendFile(index)
    }
    while open.count > 1 { closeFolder() }
    let root = open[0]
    let digest = root.entries.digest(inOrder: root.inOrder)
    ordered.append(TreeFolder(path: "", digest: digest, entries: root.entries))
    return ordered
  }

  /// The folders of `files`, with paths split into names by characters.
  private static func build(byCharacters files: [ManifestFile]) -> [TreeFolder] {
    final class Folder {
      var files: [TreeNode.Entry] = []
      var folders: [String: Folder] = [:]
    }
    let root = Folder()
    for file in files {
      var folder = root
      let parts = file.path.split(separator: "/")
      for part in parts.dropLast() {
        let name = String(part)
        if let next = folder.folders[name] {
          folder = next
        } else {
          let next = Folder()
          folder.folders[name] = next
          folder = next
        }
      }
      folder.files.append(.file(name: String(parts.last!), mode: file.mode, size: file.size, blob: file.sha256))
    }
    var ordered: [TreeFolder] = []
    func emit(_ folder: Folder, path: String) -> Data {
      var entries = folder.files
      for (name, child) in folder.folders {
        entries.append(.folder(name: name, node: emit(child, path: path.isEmpty ? name : path + "/" + name)))
      }
      let node = TreeNode(entries: entries)
      let digest = node.digest
      ordered.append(TreeFolder(path: path, digest: digest, node: node))
      return digest
    }
    _ = emit(root, path: "")
    return ordered
  }

  /// Whether the folder `path` is `folder` or inside it ("" being the root).
  private static func isInside(_ path: String, _ folder: String) -> Bool {
    guard !folder.isEmpty else { return true }
    let (inner, outer) = (path.utf8, folder.utf8)
    guard inner.starts(with: outer) else { return false }
    return inner.count == outer.count || inner[inner.index(inner.startIndex, offsetBy: outer.count)] == 0x2F
  }
}

/// A folder of a version's tree, as `TreeNode.build` lists them: its path, its digest, and its
/// entries, made when asked for.
///
/// A folder built from a file list keeps its files as indices into the list (which the tree holds
/// anyway), and makes their names only when its node is asked for: one folder at a time, as a store
/// writes them.
public struct TreeFolder: Sendable {
  public let path: String
  public let digest: Data
  private let contents: Contents

  private enum Contents: Sendable {
    case node(TreeNode)
    case entries(Entries)
  }

  init(path: String, digest: Data, node: TreeNode) {
    (self.path, self.digest, contents) = (path, digest, .node(node))
  }

  init(path: String, digest: Data, entries: Entries) {
    (self.path, self.digest, contents) = (path, digest, .entries(entries))
  }

  /// The folder's entries, in the order they were built.
  public var node: TreeNode {
    switch contents {
    case .node(let node): return node
    case .entries(let entries): return entries.node
    }
  }

  /// How many entries the folder has.
  public var entryCount: Int {
    switch contents {
    case .node(let node): return node.entries.count
    case .entries(let entries): return entries.items.count
    }
  }

  /// The contents of the folder's files (not of its folders'), in the order they were built.
  public var fileBlobs: [SHA256Hex] {
    switch contents {
    case .node(let node):
      return node.entries.compactMap {
        if case .file(_, _, _, let blob) = $0 { return blob } else { return nil }
      }
    case .entries(let entries):
      return entries.items.compactMap { $0 >= 0 ? entries.files[Int($0)].sha256 : nil }
    }
  }

  /// A folder's entries as they are built: each a file's index in `files` (zero or more), or a
  /// folder's in `folders` (as `-1 - index`).
  struct Entries: Sendable {
    let files: [ManifestFile]
    private(set) var items: [Int32] = []
    private var folders: [(name: String, digest: Data)] = []

    init(files: [ManifestFile]) { self.files = files }

    mutating func appendFile(_ index: Int) { items.append(Int32(index)) }

    mutating func appendFolder(name: String, digest: Data) {
      items.append(-1 - Int32(folders.count))
      folders.append((name, digest))
    }

    /// The name of the last entry, if any.
    var lastName: String? {
      guard let last = items.last else { return nil }
      if last < 0 { return folders[Int(-1 - last)].name }
      return EntryPath.splitAtLastSlash(files[Int(last)].path).name
    }

    var node: TreeNode {
      TreeNode(
        entries: items.map { item in
          if item < 0 {
            let folder = folders[Int(-1 - item)]
            return .folder(name: folder.name, node: folder.digest)
          }
          let file = files[Int(item)]
          return .file(
            name: EntryPath.splitAtLastSlash(file.path).name, mode: file.mode, size: file.size, blob: file.sha256)
        })
    }

    /// The folder's digest: taken over the entries as they are when `inOrder` says they are in name
    /// byte order, with no name made; over its node, which sorts them, when they are not.
    func digest(inOrder: Bool) -> Data { inOrder ? orderedDigest : node.digest }

    /// `TreeNode.digest(ordered:)` of `node`, for entries in name byte order, with no name made.
    var orderedDigest: Data {
      var lines = LineHashing()
      for item in items {
        if item < 0 {
          let folder = folders[Int(-1 - item)]
          TreeNode.writeFolderLine(&lines, node: folder.digest, name: folder.name)
        } else {
          let file = files[Int(item)]
          EntryPath.withBytes(file.path) { bytes in
            let start = (EntryPath.lastSlash(bytes).map { $0 + 1 }) ?? 0
            TreeNode.writeFileLine(
              &lines, mode: file.mode, size: file.size, blob: file.sha256,
              name: UnsafeBufferPointer(rebasing: bytes[start...]))
          }
        }
      }
      return lines.finish()
    }
  }
}
