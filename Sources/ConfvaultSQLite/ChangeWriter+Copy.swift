import ConfvaultCore
import Foundation
import GRDB

/// The changes of a store copy: history written as another store has it, numbers, times and authors
/// kept, with no audit entry of their own (the copied audit log says what happened).
extension ChangeWriter {
  func applyCopy() throws -> Version? {
    switch change.operation {
    case .copyApp(let name, let createdAt):
      try copyApp(name, createdAt: createdAt)
      return nil
    case .copyVersions(let app, let copies):
      for copy in copies { try copyVersion(copy, app: app) }
      return nil
    case .copyEnvironment(let app, let environment):
      try copyEnvironment(app: app, environment)
      return nil
    case .copyAudit(let app, let entries):
      try copyAudit(app: app, entries)
      return nil
    case .createApp, .createEnvironment, .setProduction, .deleteEnvironment, .addVersion, .sync, .note:
      preconditionFailure("not a change of a store copy")
    }
  }

  private func copyApp(_ name: String, createdAt: Date) throws {
    if try Int64.fetchOne(db, sql: "SELECT id FROM app WHERE name = ?", arguments: [name]) != nil {
      throw OperationError(.conflict, "app '\(name)' exists already")
    }
    try db.execute(
      sql: "INSERT INTO app (name, created_at) VALUES (?, ?)", arguments: [name, Queries.seconds(createdAt)])
  }

  private func copyVersion(_ copy: VersionCopy, app: String) throws {
    let tree = try copy.check(app: app)
    let version = copy.version
    let appID = try Queries.appID(db, version.app)
    if try Bool.fetchOne(
      db, sql: "SELECT 1 FROM version WHERE app_id = ? AND number = ?", arguments: [appID, version.number]) == true
    {
      throw OperationError(.conflict, "app '\(version.app)' has a version \(version.number) already")
    }
    // The parent's tree, when copied already, is the base its folders are deltas against.
    let parentTree = try version.parent.flatMap { parent in
      try Data.fetchOne(
        db,
        sql: "SELECT n.digest FROM version v JOIN tree_node n ON n.id = v.tree WHERE v.app_id = ? AND v.number = ?",
        arguments: [appID, parent])
    }
    let root = try storeTree(tree, head: parentTree)
    let imported = version.importedFrom
    try db.execute(
      sql: """
        INSERT INTO version (app_id, number, environment, author, created_at, comment, origin, parent,
          restored_from, imported_archive_sha256, imported_app, imported_environment, imported_version,
          backup, synced_at, tree, tree_digest, file_count, total_size)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
      arguments: [
        appID, version.number, version.environment, version.author, Queries.seconds(version.createdAt),
        version.comment, version.origin.rawValue, version.parent, version.restoredFrom,
        imported?.archiveSHA256.value, imported?.app, imported?.environment, imported?.version, version.backup,
        version.syncedAt.map(Queries.seconds), root, version.treeDigest.sha256.bytes, version.fileCount,
        version.totalSize,
      ])
    try db.execute(
      sql: "UPDATE app SET next_version = MAX(next_version, ?) WHERE id = ?", arguments: [version.number + 1, appID])
  }

  private func copyEnvironment(app: String, _ environment: EnvironmentInfo) throws {
    let appID = try Queries.appID(db, app)
    if try Int64.fetchOne(
      db, sql: "SELECT id FROM environment WHERE app_id = ? AND name = ?", arguments: [appID, environment.name])
      != nil
    {
      throw OperationError(.conflict, "environment '\(environment.name)' exists already in app '\(app)'")
    }
    if let head = environment.head {
      _ = try Queries.version(db, app: app, number: head)  // the head is copied first
    }
    // The unique index on production refuses a second production environment.
    try db.execute(
      sql: "INSERT INTO environment (app_id, name, is_production, created_at) VALUES (?, ?, ?, ?)",
      arguments: [appID, environment.name, environment.isProduction, Queries.seconds(environment.createdAt)])
    if let head = environment.head {
      try db.execute(
        sql: "INSERT INTO head (environment_id, version, moved_at) VALUES (?, ?, ?)",
        arguments: [db.lastInsertedRowID, head, Queries.seconds(change.at)])
    }
  }

  private func copyAudit(app: String, _ entries: [AuditEntry]) throws {
    _ = try Queries.appID(db, app)
    let taken = try db.cachedStatement(sql: "SELECT 1 FROM audit WHERE id = ?")
    let insert = try db.cachedStatement(
      sql: """
        INSERT INTO audit (id, at, author, app, environment, action, version, archive_sha256, detail)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
        """)
    for entry in entries {
      guard entry.app == app else {
        throw OperationError(.internal, "audit entry \(entry.id) is of app '\(entry.app)', not '\(app)'")
      }
      if try Bool.fetchOne(taken, arguments: [entry.id]) == true {
        throw OperationError(.conflict, "the audit log has an entry \(entry.id) already")
      }
      try insert.execute(arguments: [
        entry.id, Queries.seconds(entry.at), entry.author, entry.app, entry.environment, entry.action.rawValue,
        entry.version, entry.archiveSHA256?.value, entry.detail,
      ])
    }
  }
}
