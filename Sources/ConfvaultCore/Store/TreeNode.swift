import Crypto
import Foundation

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
    var hasher = SHA256()
    var line: [UInt8] = []
    for entry in entries.sorted(by: { EntryPath.byteOrder($0.name, $1.name) }) {
      line.removeAll(keepingCapacity: true)
      switch entry {
      case .file(let name, let mode, let size, let blob):
        line.append(contentsOf: "F \(mode.rawValue) \(size) ".utf8)
        line.append(contentsOf: blob.value.utf8)
        line.append(0x20)
        line.append(contentsOf: name.utf8)
      case .folder(let name, let node):
        line.append(contentsOf: "D ".utf8)
        line.append(contentsOf: hexString(node).utf8)
        line.append(0x20)
        line.append(contentsOf: name.utf8)
      }
      line.append(0x0A)
      hasher.update(data: line)
    }
    return Data(hasher.finalize())
  }

  /// Builds the folders of a flat file list, children before parents, the root (path "") last.
  public static func build(_ files: [ManifestFile]) -> [(path: String, digest: Data, node: TreeNode)] {
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
    var ordered: [(String, Data, TreeNode)] = []
    func emit(_ folder: Folder, path: String) -> Data {
      var entries = folder.files
      for (name, child) in folder.folders {
        entries.append(.folder(name: name, node: emit(child, path: path.isEmpty ? name : path + "/" + name)))
      }
      let node = TreeNode(entries: entries)
      let digest = node.digest
      ordered.append((path, digest, node))
      return digest
    }
    _ = emit(root, path: "")
    return ordered
  }
}
