import Crypto
import Foundation

/// A folder of a stored tree: its entries, and a digest over them, as git stores trees.
///
/// Versions share every folder that did not change, so 200 versions of a 20,000-file tree that each
/// change one file store a handful of new folders each, and a diff skips every folder whose digest
/// is the same on both sides.
public struct TreeNode: Sendable {
  public enum Entry: Sendable {
    case file(name: String, mode: FileMode, size: Int64, blob: SHA256Hex)
    case folder(name: String, node: Data)

    public var name: String {
      switch self {
      case .file(let name, _, _, _), .folder(let name, _): return name
      }
    }
  }

  public var entries: [Entry]

  public init(entries: [Entry]) { self.entries = entries }

  /// The digest that names this folder: SHA-256 over its entries in name byte order.
  public var digest: Data {
    var hasher = SHA256()
    for entry in entries.sorted(by: { EntryPath.byteOrder($0.name, $1.name) }) {
      switch entry {
      case .file(let name, let mode, let size, let blob):
        hasher.update(data: Data("F \(mode.rawValue) \(size) \(blob.value) \(name)\n".utf8))
      case .folder(let name, let node):
        hasher.update(data: Data("D \(hexString(node)) \(name)\n".utf8))
      }
    }
    return Data(hasher.finalize())
  }

  /// Builds the folders of a flat file list, children before parents, the root last.
  public static func build(_ files: [ManifestFile]) -> [(digest: Data, node: TreeNode)] {
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
    var ordered: [(Data, TreeNode)] = []
    func emit(_ folder: Folder) -> Data {
      var entries = folder.files
      for (name, child) in folder.folders { entries.append(.folder(name: name, node: emit(child))) }
      let node = TreeNode(entries: entries)
      let digest = node.digest
      ordered.append((digest, node))
      return digest
    }
    _ = emit(root)
    return ordered
  }
}
