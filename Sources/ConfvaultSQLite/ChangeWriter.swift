import ConfvaultCore
import Foundation
import GRDB

/// Applies one `StoreChange` inside a write transaction: first the checks of the heads it was decided
/// against, then the writes, then its audit entry.
struct ChangeWriter {
  let db: Database
  let change: StoreChange

  private var at: Int64 { Queries.seconds(change.at) }

  func apply() throws -> Version? {
    switch change.operation {
    case .createApp(let name, let environments, let production):
      try createApp(name, environments: environments, production: production)
      return nil
    case .createEnvironment(let app, let name, let production):
      try createEnvironment(app: app, name: name, production: production, detail: change.detail)
      return nil
    case .setProduction(let app, let name):
      try setProduction(app: app, name: name, detail: change.detail)
      return nil
    case .deleteEnvironment(let app, let name, let expectedHead):
      try deleteEnvironment(app: app, name: name, expectedHead: expectedHead)
      return nil
    case .addVersion(let draft, let expectedHead):
      return try addVersion(draft, expectedHead: expectedHead)
    case .sync(let app, let environment, let number, let expectedHead):
      return try sync(app: app, environment: environment, number: number, expectedHead: expectedHead)
    case .note(let app, let environment, let action, let version):
      _ = try Queries.appID(db, app)
      try appendAudit(app: app, environment: environment, action: action, version: version)
      return nil
    case .copyApp, .copyVersions, .copyEnvironment, .copyAudit:
      return try applyCopy()
    }
  }

  private func createApp(_ name: String, environments: [String], production: String?) throws {
    if try Int64.fetchOne(db, sql: "SELECT id FROM app WHERE name = ?", arguments: [name]) != nil {
      throw OperationError(.conflict, "app '\(name)' exists already")
    }
    try db.execute(sql: "INSERT INTO app (name, created_at) VALUES (?, ?)", arguments: [name, at])
    try appendAudit(app: name, environment: nil, action: .`init`, version: nil)
    for environment in environments {
      try createEnvironment(
        app: name, name: environment, production: environment == production,
        detail: environment == production ? "production environment created" : "environment created")
    }
  }

  private func createEnvironment(app: String, name: String, production: Bool, detail: String) throws {
    let appID = try Queries.appID(db, app)
    if try Int64.fetchOne(
      db, sql: "SELECT id FROM environment WHERE app_id = ? AND name = ?", arguments: [appID, name]) != nil
    {
      throw OperationError(.conflict, "environment '\(name)' exists already in app '\(app)'")
    }
    if production,
      let current = try String.fetchOne(
        db, sql: "SELECT name FROM environment WHERE app_id = ? AND is_production = 1", arguments: [appID])
    {
      throw OperationError(.conflict, "app '\(app)' has a production environment already: '\(current)'")
    }
    try db.execute(
      sql: "INSERT INTO environment (app_id, name, is_production, created_at) VALUES (?, ?, ?, ?)",
      arguments: [appID, name, production, at])
    try appendAudit(app: app, environment: name, action: .environmentCreate, version: nil, detail: detail)
  }

  private func setProduction(app: String, name: String, detail: String) throws {
    let environment = try Queries.app(db, app).environment(name)
    guard !environment.isProduction else {
      throw OperationError(.operationFailed, "'\(name)' is the production environment of '\(app)' already")
    }
    let appID = try Queries.appID(db, app)
    try db.execute(sql: "UPDATE environment SET is_production = 0 WHERE app_id = ?", arguments: [appID])
    try db.execute(
      sql: "UPDATE environment SET is_production = 1 WHERE app_id = ? AND name = ?", arguments: [appID, name])
    try appendAudit(app: app, environment: name, action: .environmentSetProduction, version: nil, detail: detail)
  }

  private func deleteEnvironment(app: String, name: String, expectedHead: Int?) throws {
    let environment = try Queries.app(db, app).environment(name)
    if environment.isProduction {
      throw OperationError(
        .operationFailed, "'\(name)' is the production environment of '\(app)'; it cannot be deleted")
    }
    try checkHead(environment, app: app, expected: expectedHead)
    let appID = try Queries.appID(db, app)
    try db.execute(
      sql: "DELETE FROM head WHERE environment_id = (SELECT id FROM environment WHERE app_id = ? AND name = ?)",
      arguments: [appID, name])
    try db.execute(sql: "DELETE FROM environment WHERE app_id = ? AND name = ?", arguments: [appID, name])
    try appendAudit(app: app, environment: name, action: .environmentDelete, version: environment.head)
  }

  private func addVersion(_ draft: VersionDraft, expectedHead: Int?) throws -> Version {
    let appID = try Queries.appID(db, draft.app)
    let environment = try Queries.app(db, draft.app).environment(draft.environment)
    try checkHead(environment, app: draft.app, expected: expectedHead)
    let head = try environment.head.map { try Queries.treeRoot(db, app: draft.app, number: $0) }
    let root = try storeTree(draft.tree, head: head)
    guard
      let number = try Int.fetchOne(
        db, sql: "UPDATE app SET next_version = next_version + 1 WHERE id = ? RETURNING next_version - 1",
        arguments: [appID])
    else { throw OperationError(.notFound, "app '\(draft.app)' vanished") }
    let digest = draft.tree.digest
    let totalSize = draft.files.reduce(Int64(0)) { $0 + $1.size }
    try db.execute(
      sql: """
        INSERT INTO version (app_id, number, environment, author, created_at, comment, origin, parent,
          restored_from, imported_archive_sha256, imported_app, imported_environment, imported_version,
          backup, synced_at, tree, tree_digest, file_count, total_size)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?)
        """,
      arguments: [
        appID, number, draft.environment, change.author, at, draft.comment, draft.origin.rawValue,
        environment.head, draft.restoredFrom, draft.importedFrom?.archiveSHA256.value, draft.importedFrom?.app,
        draft.importedFrom?.environment, draft.importedFrom?.version, draft.backup, root, digest.sha256.bytes,
        draft.files.count, totalSize,
      ])
    if draft.pinsReplacedHead, let previous = environment.head {
      try pin(appID: appID, number: previous)
    }
    try setHead(appID: appID, environment: draft.environment, number: number)
    try appendAudit(
      app: draft.app, environment: draft.environment, action: AuditAction(draft.origin), version: number)
    return try Queries.version(db, app: draft.app, number: number)
  }

  private func sync(app: String, environment name: String, number: Int, expectedHead: Int?) throws -> Version {
    let appID = try Queries.appID(db, app)
    let environment = try Queries.app(db, app).environment(name)
    try checkHead(environment, app: app, expected: expectedHead)
    _ = try Queries.version(db, app: app, number: number)
    if environment.head != number {
      if let previous = environment.head { try pin(appID: appID, number: previous) }
      try setHead(appID: appID, environment: name, number: number)
    }
    if environment.isProduction {
      try db.execute(
        sql: "UPDATE version SET synced_at = ?, backup = 1 WHERE app_id = ? AND number = ?",
        arguments: [at, appID, number])
    } else {
      try pin(appID: appID, number: number)  // synced-at is for production only
    }
    try appendAudit(app: app, environment: name, action: .sync, version: number)
    return try Queries.version(db, app: app, number: number)
  }

  /// Refuses the change when the environment's head is not the one it was decided against.
  private func checkHead(_ environment: EnvironmentInfo, app: String, expected: Int?) throws {
    guard environment.head != expected else { return }
    func shown(_ head: Int?) -> String { head.map { "v\($0)" } ?? "no version" }
    throw OperationError(
      .conflict,
      "the head of \(app)/\(environment.name) is \(shown(environment.head)), not \(shown(expected)) as when the change was decided; nothing was changed"
    )
  }

  private func pin(appID: Int64, number: Int) throws {
    try db.execute(
      sql: "UPDATE version SET backup = 1 WHERE app_id = ? AND number = ?", arguments: [appID, number])
  }

  private func setHead(appID: Int64, environment: String, number: Int) throws {
    try db.execute(
      sql: """
        INSERT INTO head (environment_id, version, moved_at)
        VALUES ((SELECT id FROM environment WHERE app_id = ? AND name = ?), ?, ?)
        ON CONFLICT (environment_id) DO UPDATE SET version = excluded.version, moved_at = excluded.moved_at
        """,
      arguments: [appID, environment, number, at])
  }

  private func appendAudit(
    app: String, environment: String?, action: AuditAction, version: Int?, detail: String? = nil
  ) throws {
    try db.execute(
      sql: """
        INSERT INTO audit (at, author, app, environment, action, version, archive_sha256, detail)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        """,
      arguments: [
        at, change.author, app, environment, action.rawValue, version, change.archiveSHA256?.value,
        detail ?? change.detail,
      ])
  }

  /// Stores the folders of `tree` that are not stored yet, each new one as a delta against the
  /// folder at its path in the tree `head` where that pays; returns the root folder's row.
  ///
  /// Only the files of new folders have their blobs looked up: a stored folder's are stored.
  ///
  /// - Throws: `.internal` when a file's content was not stored first.
  func storeTree(_ tree: VersionTree, head: Data?) throws -> Int64 {
    let new = try Queries.newFolders(db, tree.folders)
    let hasBlob = try db.cachedStatement(sql: "SELECT 1 FROM blob WHERE sha256 = ?")
    // By the folders' contents, with no names made (the records below make them): a name only
    // for the message.
    for folder in new {
      for blob in folder.fileBlobs {
        guard try Bool.fetchOne(hasBlob, arguments: [blob.bytes]) == true else {
          let name = folder.node.entries.first { if case .file(_, _, _, blob) = $0 { true } else { false } }?.name ?? ""
          let path = folder.path.isEmpty ? name : folder.path + "/" + name
          throw OperationError(.internal, "the content of `\(path)` (\(blob)) was not stored first")
        }
      }
    }
    try Queries.folders(db).forEachRecord(for: new, head: head, isStored: { _ in false }) { record in
      try Queries.insert(db, [record])
    }
    guard let root = try Queries.folderID(db, tree.root) else {
      throw OperationError(.internal, "the tree just stored is missing from the store", hint: .runCheck)
    }
    return root
  }
}
