import ConfvaultCore
import Foundation
import GRDB

/// Converts a store's folders from rows of entries (the tables `tree_node_v1` and `tree_entry_v1`)
/// to records, version by version in number order, so each new folder can be a delta against the
/// folder at its path in its parent version, as a change would have written it.
///
/// It writes the layout of migration v4 with SQL of its own, frozen with that migration: later
/// migrations change the layout from there.
struct FolderConversion {
  let db: Database

  func run() throws {
    let folders = FolderReader(shared: false) { digest in
      try Row.fetchOne(
        db.cachedStatement(sql: "SELECT base, depth, zstd, data FROM tree_node WHERE digest = ?"), arguments: [digest]
      ).map { row in
        StoredFolder(digest: digest, base: row["base"], depth: row["depth"], compressed: row["zstd"], data: row["data"])
      }
    }
    let versions = try Row.fetchAll(
      db,
      sql: """
        SELECT v.tree, p.tree AS parent_tree FROM version v
        LEFT JOIN version p ON p.app_id = v.app_id AND p.number = v.parent
        ORDER BY v.app_id, v.number
        """)
    for row in versions {
      try convert(row["tree"], path: "", bases: BaseFinder(reader: folders, head: row["parent_tree"]))
    }
    // Folders no version refers to (none are expected) are kept, as whole records.
    let left = try Data.fetchAll(
      db, sql: "SELECT digest FROM tree_node_v1 WHERE digest NOT IN (SELECT digest FROM tree_node)")
    for digest in left { try convert(digest, path: "", bases: BaseFinder(reader: folders, head: nil)) }
  }

  /// Converts the folder `digest` at `path` and every folder below it not converted yet.
  private func convert(_ digest: Data, path: String, bases: BaseFinder) throws {
    let converted = try db.cachedStatement(sql: "SELECT 1 FROM tree_node WHERE digest = ?")
    guard try Bool.fetchOne(converted, arguments: [digest]) != true else { return }
    let entries = try Row.fetchAll(
      db.cachedStatement(sql: "SELECT name, is_folder, executable, size, target FROM tree_entry_v1 WHERE node = ?"),
      arguments: [digest]
    ).map { row -> TreeNode.Entry in
      let name: String = row["name"]
      let target: Data = row["target"]
      let size: Int64 = row["size"]
      guard target.count == 32, size >= 0 else { throw FolderRecord.unconvertible(digest, entry: name) }
      if row["is_folder"] { return .folder(name: name, node: target) }
      return .file(
        name: name, mode: row["executable"] ? .executable : .regular, size: size,
        blob: try Queries.digest(target))
    }
    for case .folder(let name, let child) in entries {
      try convert(child, path: path.isEmpty ? name : path + "/" + name, bases: bases)
    }
    let record = FolderRecord.encode(TreeNode(entries: entries), digest: digest, base: try bases.base(at: path))
    try db.cachedStatement(
      sql: "INSERT OR IGNORE INTO tree_node (digest, base, depth, zstd, data) VALUES (?, ?, ?, ?, ?)"
    ).execute(arguments: [record.digest, record.base, record.depth, record.compressed, record.data])
    for blob in try FolderRecord.namedBlobs(record) {
      try db.cachedStatement(sql: "INSERT OR IGNORE INTO tree_blob (blob) VALUES (?)").execute(arguments: [blob.bytes])
    }
  }
}
