import ConfvaultCore
import Foundation
import GRDB

/// The SQL the store's reads share, inside and outside write transactions.
enum Queries {
  static func appID(_ db: Database, _ name: String) throws -> Int64 {
    if let id = try Int64.fetchOne(db, sql: "SELECT id FROM app WHERE name = ?", arguments: [name]) {
      return id
    }
    let names = try String.fetchAll(db, sql: "SELECT name FROM app ORDER BY name")
    throw OperationError(
      .notFound, "no app '\(name)' in the store; apps: \(names.isEmpty ? "none" : names.joined(separator: ", "))",
      hint: .createApp(name))
  }

  static func app(_ db: Database, _ name: String) throws -> AppInfo {
    let id = try appID(db, name)
    let created = try Int64.fetchOne(db, sql: "SELECT created_at FROM app WHERE id = ?", arguments: [id]) ?? 0
    let environments = try Row.fetchAll(
      db,
      sql: """
        SELECT e.name, e.is_production, e.created_at, h.version FROM environment e
        LEFT JOIN head h ON h.environment_id = e.id WHERE e.app_id = ? ORDER BY e.id
        """, arguments: [id]
    ).map { row in
      EnvironmentInfo(
        name: row["name"], isProduction: row["is_production"], head: row["version"],
        createdAt: Date(timeIntervalSince1970: TimeInterval(row["created_at"] as Int64)))
    }
    return AppInfo(
      name: name, createdAt: Date(timeIntervalSince1970: TimeInterval(created)), environments: environments)
  }

  static func version(_ db: Database, app: String, number: Int) throws -> Version {
    let appID = try appID(db, app)
    guard
      let row = try Row.fetchOne(
        db, sql: "SELECT * FROM version WHERE app_id = ? AND number = ?", arguments: [appID, number])
    else {
      let newest = try Int.fetchOne(db, sql: "SELECT MAX(number) FROM version WHERE app_id = ?", arguments: [appID])
      throw OperationError(
        .notFound,
        "no version \(number) in app '\(app)'; "
          + (newest.map { "versions are 1 to \($0)" } ?? "it has no versions yet (push one first)"))
    }
    return try version(row, app: app)
  }

  /// A version row as a `Version`; a damaged row is an error, never a plausible version.
  static func version(_ row: Row, app: String) throws -> Version {
    let number: Int = row["number"]
    func damaged(_ what: String) -> OperationError {
      OperationError(.internal, "app '\(app)' version \(number) is damaged in the store: \(what)", hint: .runCheck)
    }
    let originText: String = row["origin"]
    guard let origin = Origin(rawValue: originText) else { throw damaged("unknown origin `\(originText)`") }
    let digestBytes: Data = row["tree_digest"]
    guard let sha256 = SHA256Hex(bytes: digestBytes) else {
      throw damaged("tree digest of \(digestBytes.count) bytes, not 32")
    }
    let treeDigest = TreeDigest(sha256: sha256)
    var importedFrom: ImportOrigin?
    if let importSHA: String = row["imported_archive_sha256"] {
      guard let archiveSHA256 = SHA256Hex(importSHA) else { throw damaged("archive SHA-256 `\(importSHA)`") }
      importedFrom = ImportOrigin(
        archiveSHA256: archiveSHA256, app: row["imported_app"], environment: row["imported_environment"],
        version: row["imported_version"])
    }
    return Version(
      app: app, number: number, environment: row["environment"], author: row["author"],
      createdAt: date(row["created_at"]), comment: row["comment"], origin: origin, parent: row["parent"],
      restoredFrom: row["restored_from"], importedFrom: importedFrom, backup: row["backup"],
      syncedAt: (row["synced_at"] as Int64?).map(date), treeDigest: treeDigest, fileCount: row["file_count"],
      totalSize: row["total_size"])
  }

  static func date(_ seconds: Int64) -> Date { Date(timeIntervalSince1970: TimeInterval(seconds)) }

  static func seconds(_ date: Date) -> Int64 { Int64(date.timeIntervalSince1970.rounded(.down)) }

  /// A blob digest as stored; a damaged one is an error.
  static func digest(_ bytes: Data) throws -> SHA256Hex {
    guard let digest = SHA256Hex(bytes: bytes) else {
      throw OperationError(.internal, "a stored digest is damaged (\(bytes.count) bytes)", hint: .runCheck)
    }
    return digest
  }

  static func treeRoot(_ db: Database, app: String, number: Int) throws -> Data {
    let appID = try appID(db, app)
    guard
      let row = try Row.fetchOne(
        db,
        sql: """
          SELECT n.digest FROM version v LEFT JOIN tree_node n ON n.id = v.tree
          WHERE v.app_id = ? AND v.number = ?
          """, arguments: [appID, number])
    else {
      _ = try version(db, app: app, number: number)  // throws the message that says which versions exist
      throw OperationError(.notFound, "no version \(number) in app '\(app)'")
    }
    guard let root = row["digest"] as Data? else {
      throw OperationError(
        .internal, "app '\(app)' version \(number) is damaged in the store: its tree is missing", hint: .runCheck)
    }
    return root
  }

  /// The store's folders, read through the process's cache of decoded folders.
  static func folders(_ db: Database) -> FolderReader { folders(db, cache: .shared) }

  /// A reader of the folder records of `db` that keeps what it decodes in `cache`.
  static func folders(_ db: Database, cache: FolderCache) -> FolderReader {
    FolderReader(cache: cache) { digest in
      try Row.fetchOne(
        db.cachedStatement(
          sql: """
            SELECT \(baseDigest) AS base, n.depth, n.zstd, n.data FROM tree_node n
            LEFT JOIN tree_node b ON b.id = n.base WHERE \(folderIs("n"))
            """), arguments: folderArguments(digest)
      ).map { row in
        StoredFolder(digest: digest, base: row["base"], depth: row["depth"], compressed: row["zstd"], data: row["data"])
      }
    }
  }

  /// The condition that `alias`'s folder record has the digest given as `folderArguments`: through
  /// the index of the digests' first 8 bytes, then the whole digest.
  static func folderIs(_ alias: String) -> String {
    "substr(\(alias).digest, 1, 8) = ? AND \(alias).digest = ?"
  }

  static func folderArguments(_ digest: Data) -> StatementArguments { [digest.prefix(8), digest] }

  /// The row of the folder record `digest`, if stored.
  static func folderID(_ db: Database, _ digest: Data) throws -> Int64? {
    try Int64.fetchOne(
      db.cachedStatement(sql: "SELECT n.id FROM tree_node n WHERE \(folderIs("n"))"), arguments: folderArguments(digest)
    )
  }

  /// The folders of `folders` (as `TreeNode.build` lists them) that are not stored, in the same order.
  ///
  /// Looked up parents first: the folders of a stored folder are stored (`check` proves it), so a
  /// one-file change looks up the folders along its path and their siblings, not every folder.
  static func newFolders(
    _ db: Database, _ folders: [TreeFolder]
  ) throws -> [TreeFolder] {
    var stored = Set<String>()
    var new: [TreeFolder] = []
    for folder in folders.reversed() {
      let parentStored = !folder.path.isEmpty && stored.contains(EntryPath.folder(of: folder.path))
      if try parentStored || folderID(db, folder.digest) != nil {
        stored.insert(folder.path)
      } else {
        new.append(folder)
      }
    }
    return new.reversed()
  }

  /// The digest of a folder record's base, in a query of `tree_node n LEFT JOIN tree_node b ON b.id =
  /// n.base`: the base is stored as its row, and a row that is gone (a damaged store) reads as a
  /// digest no folder has, so the chain is reported broken.
  static let baseDigest = "CASE WHEN n.base IS NULL THEN NULL ELSE COALESCE(b.digest, zeroblob(32)) END"

  /// A query of the blobs `gc` removes, stored no later than `storedBefore` (seconds; nil for any
  /// time): those no folder names, except the bases of deltas that stay.
  static func unreferencedBlobs(storedBefore: Int64?) -> String {
    """
    WITH unused AS (
      SELECT sha256, first_chunk FROM blob WHERE named = 0\(storedBefore.map { " AND stored_at <= \($0)" } ?? "")
    )
    SELECT sha256 FROM unused
    WHERE first_chunk NOT IN (
      SELECT base FROM blob WHERE base IS NOT NULL AND sha256 NOT IN (SELECT sha256 FROM unused))
    """
  }

  /// Stores `records` and notes every blob they name as used, so that `gc` keeps it.
  ///
  /// - Throws: `.internal` when a record's base is not stored (it is read from the store, so the
  ///   store is damaged).
  static func insert(_ db: Database, _ records: [StoredFolder]) throws {
    for record in records {
      // Stored once: the index does not enforce it (it keeps only 8 bytes of each digest).
      if try folderID(db, record.digest) == nil {
        var base: Int64?
        if let digest = record.base {
          base = try folderID(db, digest)
          guard base != nil else {
            throw OperationError(
              .internal, "folder \(hexString(digest)) is missing from the store; nothing was changed", hint: .runCheck)
          }
        }
        try db.cachedStatement(
          sql: "INSERT INTO tree_node (digest, base, depth, zstd, data) VALUES (?, ?, ?, ?, ?)"
        ).execute(arguments: [record.digest, base, record.depth, record.compressed, record.data])
      }
      for blob in try FolderRecord.namedBlobs(record) {
        try db.cachedStatement(sql: "UPDATE blob SET named = 1 WHERE sha256 = ? AND named = 0").execute(arguments: [
          blob.bytes
        ])
      }
    }
  }

  /// Every file below `node`, paths prefixed by `prefix`.
  static func flatten(_ folders: FolderReader, node: Data, prefix: String = "", depth: Int = 0) throws
    -> [ManifestFile]
  {
    guard depth <= TreeNode.deepestFolder else { throw TreeNode.tooDeep(node) }
    var files: [ManifestFile] = []
    for entry in try folders.entries(node) {
      switch entry {
      case .file(let name, let mode, let size, let blob):
        files.append(ManifestFile(path: prefix + name, size: size, mode: mode, sha256: blob))
      case .folder(let name, let child):
        files += try flatten(folders, node: child, prefix: prefix + name + "/", depth: depth + 1)
      }
    }
    return files
  }

  /// The files that differ between two folders; equal subfolders are skipped unread.
  static func diff(
    _ folders: FolderReader, old: Data?, new: Data?, prefix: String, depth: Int = 0,
    into changes: inout [FileChange]
  ) throws {
    guard old != new else { return }
    guard depth <= TreeNode.deepestFolder else { throw TreeNode.tooDeep(new ?? old ?? Data()) }
    let before = try old.map { try folders.entries($0) } ?? []
    let after = try new.map { try folders.entries($0) } ?? []
    func compare(_ name: String, _ old: TreeNode.Entry?, _ new: TreeNode.Entry?) throws {
      guard old != new else { return }  // the same file, or the same folder: nothing below it changed
      let path = prefix + name
      let (oldFolder, oldFile) = TreeNode.Entry.split(old, at: path)
      let (newFolder, newFile) = TreeNode.Entry.split(new, at: path)
      if oldFolder != nil || newFolder != nil {
        try diff(folders, old: oldFolder, new: newFolder, prefix: path + "/", depth: depth + 1, into: &changes)
      }
      if let change = FileChange(path: path, old: oldFile, new: newFile) { changes.append(change) }
    }
    func isInOrder(_ entries: [TreeNode.Entry]) -> Bool {
      zip(entries, entries.dropFirst()).allSatisfy { EntryPath.byteOrder($0.name, $1.name) }
    }
    // Records list their entries in name order: the two folders are walked side by side, and an
    // entry that did not change costs one comparison.
    guard isInOrder(before), isInOrder(after) else {
      // (A damaged record, a name twice: the first of each name counts.)
      let old = Dictionary(before.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
      let new = Dictionary(after.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
      for name in Set(old.keys).union(new.keys) { try compare(name, old[name], new[name]) }
      return
    }
    var (next, nextAfter) = (0, 0)
    while next < before.count || nextAfter < after.count {
      let old = next < before.count ? before[next] : nil
      let new = nextAfter < after.count ? after[nextAfter] : nil
      // The side or sides whose entry comes first by name: both, for the same name.
      var (takesOld, takesNew) = (old != nil, new != nil)
      if let old, let new {
        takesOld = !EntryPath.byteOrder(new.name, old.name)
        takesNew = !EntryPath.byteOrder(old.name, new.name)
      }
      let (first, second) = (takesOld ? old : nil, takesNew ? new : nil)
      guard let name = (first ?? second)?.name else { break }
      try compare(name, first, second)
      if takesOld { next += 1 }
      if takesNew { nextAfter += 1 }
    }
  }

  static func auditEntry(_ row: Row) throws -> AuditEntry {
    let actionText: String = row["action"]
    let id: Int64 = row["id"]
    guard let action = AuditAction(rawValue: actionText) else {
      throw OperationError(.internal, "audit entry \(id) is damaged: unknown action `\(actionText)`", hint: .runCheck)
    }
    let archive: String? = row["archive_sha256"]
    return AuditEntry(
      id: id, at: date(row["at"]), author: row["author"], app: row["app"], environment: row["environment"],
      action: action, version: row["version"], archiveSHA256: archive.flatMap(SHA256Hex.init),
      detail: row["detail"])
  }
}
