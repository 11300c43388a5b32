import ConfvaultCore
import Foundation
import PostgresNIO

/// Converts a database's folders from rows of entries (the tables `tree_node_v1` and `tree_entry_v1`)
/// to records, version by version in number order, so each new folder can be a delta against the
/// folder at its path in its parent version, as a change would have written it. The records written
/// are kept in memory while it runs (they are the compact form of every folder).
struct FolderConversion {
  let session: SQLSession

  private final class Converted {
    var records: [Data: StoredFolder] = [:]
  }

  func run() async throws {
    let converted = Converted()
    let reader = FolderReader(shared: false) { converted.records[$0] }
    let versions = try await session.rows(
      """
      SELECT v.tree, p.tree FROM version v
      LEFT JOIN version p ON p.app_id = v.app_id AND p.number = v.parent
      ORDER BY v.app_id, v.number
      """
    ).map { try $0.decode((Data, Data?).self) }
    for (tree, parent) in versions {
      try await convert(tree, path: "", bases: BaseFinder(reader: reader, head: parent), into: converted)
    }
    // Folders no version refers to (none are expected) are kept, as whole records.
    let left = try await session.rows("SELECT digest FROM tree_node_v1").map { try $0.decode(Data.self) }
    for digest in left where converted.records[digest] == nil {
      try await convert(digest, path: "", bases: BaseFinder(reader: reader, head: nil), into: converted)
    }
  }

  /// Converts the folder `digest` at `path` and every folder below it not converted yet.
  private func convert(_ digest: Data, path: String, bases: BaseFinder, into converted: Converted) async throws {
    guard converted.records[digest] == nil else { return }
    let entries = try await session.rows(
      "SELECT name, is_folder, executable, size, target FROM tree_entry_v1 WHERE node = \(digest)"
    ).map { row -> TreeNode.Entry in
      let (name, isFolder, executable, size, target) = try row.decode((String, Bool, Bool, Int64, Data).self)
      guard target.count == 32, size >= 0 else { throw FolderRecord.unconvertible(digest, entry: name) }
      if isFolder { return .folder(name: name, node: target) }
      return .file(
        name: name, mode: executable ? .executable : .regular, size: size, blob: try Queries.digest(target))
    }
    for case .folder(let name, let child) in entries {
      try await convert(child, path: path.isEmpty ? name : path + "/" + name, bases: bases, into: converted)
    }
    let record = FolderRecord.encode(TreeNode(entries: entries), digest: digest, base: try bases.base(at: path))
    try await Queries.insert(session, [record])
    converted.records[digest] = record
  }
}
