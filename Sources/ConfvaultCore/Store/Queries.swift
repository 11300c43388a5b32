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
      .operationFailed,
      "no app '\(name)' in the store; apps: \(names.isEmpty ? "none (create one with `confvault init --app \(name)`)" : names.joined(separator: ", "))"
    )
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
        .operationFailed,
        "no version \(number) in app '\(app)'; "
          + (newest.map { "versions are 1 to \($0)" } ?? "it has no versions yet (push one first)"))
    }
    return version(row, app: app)
  }

  static func version(_ row: Row, app: String) -> Version {
    let importSHA: String? = row["imported_archive_sha256"]
    return Version(
      app: app, number: row["number"], environment: row["environment"], author: row["author"],
      createdAt: Date(timeIntervalSince1970: TimeInterval(row["created_at"] as Int64)),
      comment: row["comment"], origin: Origin(rawValue: row["origin"]) ?? .push, parent: row["parent"],
      restoredFrom: row["restored_from"],
      importedFrom: importSHA.map {
        ImportOrigin(
          archiveSHA256: $0, app: row["imported_app"], environment: row["imported_environment"],
          version: row["imported_version"])
      },
      backup: row["backup"],
      syncedAt: (row["synced_at"] as Int64?).map { Date(timeIntervalSince1970: TimeInterval($0)) },
      treeDigest: TreeDigest(row["tree_digest"]) ?? TreeDigest(files: []), fileCount: row["file_count"],
      totalSize: row["total_size"])
  }

  static func treeRoot(_ db: Database, app: String, number: Int) throws -> Data {
    let appID = try appID(db, app)
    guard
      let root = try Data.fetchOne(
        db, sql: "SELECT tree FROM version WHERE app_id = ? AND number = ?", arguments: [appID, number])
    else {
      _ = try version(db, app: app, number: number)  // throws the message that says which versions exist
      throw OperationError(.operationFailed, "no version \(number) in app '\(app)'")
    }
    return root
  }

  struct EntryRow {
    var name: String
    var isFolder: Bool
    var mode: FileMode
    var size: Int64
    var target: Data
  }

  static func entries(_ db: Database, node: Data) throws -> [EntryRow] {
    try Row.fetchAll(
      db.cachedStatement(sql: "SELECT name, is_folder, executable, size, target FROM tree_entry WHERE node = ?"),
      arguments: [node]
    ).map { row in
      EntryRow(
        name: row["name"], isFolder: row["is_folder"], mode: row["executable"] ? .executable : .regular,
        size: row["size"], target: row["target"])
    }
  }

  /// Every file below `node`, paths prefixed by `prefix`.
  static func flatten(_ db: Database, node: Data, prefix: String = "") throws -> [ManifestFile] {
    var files: [ManifestFile] = []
    for entry in try entries(db, node: node) {
      let path = prefix + entry.name
      if entry.isFolder {
        files += try flatten(db, node: entry.target, prefix: path + "/")
      } else {
        files.append(
          ManifestFile(path: path, size: entry.size, mode: entry.mode, sha256: SHA256Hex(bytes: entry.target)))
      }
    }
    return files
  }

  /// The files that differ between two folders; equal subfolders are skipped unread.
  static func diff(_ db: Database, old: Data?, new: Data?, prefix: String, into changes: inout [FileChange]) throws {
    guard old != new else { return }
    let oldEntries = try old.map { try entries(db, node: $0) } ?? []
    let newEntries = try new.map { try entries(db, node: $0) } ?? []
    let oldByName = Dictionary(uniqueKeysWithValues: oldEntries.map { ($0.name, $0) })
    let newByName = Dictionary(uniqueKeysWithValues: newEntries.map { ($0.name, $0) })
    func file(_ entry: EntryRow, _ path: String) -> ManifestFile {
      ManifestFile(path: path, size: entry.size, mode: entry.mode, sha256: SHA256Hex(bytes: entry.target))
    }
    for name in Set(oldByName.keys).union(newByName.keys) {
      let path = prefix + name
      let before = oldByName[name]
      let after = newByName[name]
      let oldFolder = before.flatMap { $0.isFolder ? $0.target : nil }
      let newFolder = after.flatMap { $0.isFolder ? $0.target : nil }
      if oldFolder != nil || newFolder != nil {
        try diff(db, old: oldFolder, new: newFolder, prefix: path + "/", into: &changes)
      }
      let oldFile = before.flatMap { $0.isFolder ? nil : file($0, path) }
      let newFile = after.flatMap { $0.isFolder ? nil : file($0, path) }
      switch (oldFile, newFile) {
      case (nil, nil):
        break
      case (let old?, nil):
        changes.append(FileChange(path: path, kind: .removed, old: old, new: nil))
      case (nil, let new?):
        changes.append(FileChange(path: path, kind: .added, old: nil, new: new))
      case (let old?, let new?):
        if old.sha256 != new.sha256 {
          changes.append(FileChange(path: path, kind: .modified, old: old, new: new))
        } else if old.mode != new.mode {
          changes.append(FileChange(path: path, kind: .modeChanged, old: old, new: new))
        }
      }
    }
  }

  static func auditEntry(_ row: Row) -> AuditEntry {
    AuditEntry(
      id: row["id"], at: Date(timeIntervalSince1970: TimeInterval(row["at"] as Int64)), author: row["author"],
      app: row["app"], environment: row["environment"], action: row["action"], version: row["version"],
      archiveSHA256: row["archive_sha256"], detail: row["detail"])
  }
}

extension FileChange {
  /// The changes from `old` to `new`, two flat file lists (for trees not in the store, such as an archive).
  public static func between(old: [ManifestFile], new: [ManifestFile]) -> [FileChange] {
    let before = Dictionary(old.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
    let after = Dictionary(new.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
    var changes: [FileChange] = []
    for (path, file) in before where after[path] == nil {
      changes.append(FileChange(path: path, kind: .removed, old: file, new: nil))
    }
    for (path, file) in after {
      guard let previous = before[path] else {
        changes.append(FileChange(path: path, kind: .added, old: nil, new: file))
        continue
      }
      if previous.sha256 != file.sha256 {
        changes.append(FileChange(path: path, kind: .modified, old: previous, new: file))
      } else if previous.mode != file.mode {
        changes.append(FileChange(path: path, kind: .modeChanged, old: previous, new: file))
      }
    }
    return changes.sorted { EntryPath.byteOrder($0.path, $1.path) }
  }
}
