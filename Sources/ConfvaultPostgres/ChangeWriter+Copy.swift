import ConfvaultCore
import Foundation
import PostgresNIO

/// The changes of a store copy: history written as another store has it, numbers, times and authors
/// kept, with no audit entry of their own (the copied audit log says what happened).
extension ChangeWriter {
  func applyCopy() async throws -> Version? {
    switch change.operation {
    case .copyApp(let name, let createdAt):
      try await copyApp(name, createdAt: createdAt)
      return nil
    case .copyVersions(let app, let copies):
      try await copyVersions(app: app, copies)
      return nil
    case .copyEnvironment(let app, let environment):
      try await copyEnvironment(app: app, environment)
      return nil
    case .copyAudit(let app, let entries):
      try await copyAudit(app: app, entries)
      return nil
    case .createApp, .createEnvironment, .setProduction, .deleteEnvironment, .addVersion, .sync, .note:
      preconditionFailure("not a change of a store copy")
    }
  }

  private func copyApp(_ name: String, createdAt: Date) async throws {
    let created = StoredTime.seconds(createdAt)
    guard
      try await session.one(
        "INSERT INTO app (name, created_at) VALUES (\(name), \(created)) ON CONFLICT (name) DO NOTHING RETURNING id")
        != nil
    else { throw OperationError(.conflict, "app '\(name)' exists already") }
  }

  /// Adds the versions with a few statements for the whole batch and one or two per version, so that
  /// a copy over a network makes few round trips.
  private func copyVersions(app: String, _ copies: [VersionCopy]) async throws {
    let built = try copies.map { try $0.check(app: app) }
    guard let newest = copies.map(\.version.number).max() else { return }
    let appID = try await Queries.appID(session, app, lock: true)
    let numbers = copies.map { Int64($0.version.number) }
    if let row = try await session.one(
      "SELECT min(number) FROM version WHERE app_id = \(appID) AND number = ANY(\(numbers))"),
      let taken = try row.decode(Int64?.self)
    {
      throw OperationError(.conflict, "app '\(app)' has a version \(taken) already")
    }
    // FOR KEY SHARE holds the blobs until the commit, as for a new version (see `addVersion`).
    let wanted = Set(copies.flatMap { $0.files.map(\.sha256) })
    let present = try await session.rows(
      "SELECT sha256 FROM blob WHERE sha256 = ANY(\(wanted.map(\.bytes.buffer))) FOR KEY SHARE"
    ).map { try Queries.digest($0.decode(Data.self)) }
    let missing = wanted.subtracting(present)
    for copy in copies {
      if let file = copy.files.first(where: { missing.contains($0.sha256) }) {
        throw OperationError(.internal, "the content of `\(file.path)` (\(file.sha256)) was not stored first")
      }
    }
    var trees: [Int: Data] = [:]
    for (copy, tree) in zip(copies, built) {
      let version = copy.version
      // The parent's tree, when copied already, is the base its folders are deltas against.
      var parentTree: Data?
      if let parent = version.parent {
        parentTree = trees[parent]
        if parentTree == nil {
          parentTree = try await session.one(
            "SELECT tree FROM version WHERE app_id = \(appID) AND number = \(parent)")?.decode(Data.self)
        }
      }
      let root = try await storeTree(tree, head: parentTree)
      trees[version.number] = root
      let imported = version.importedFrom
      let created = StoredTime.seconds(version.createdAt)
      let synced = version.syncedAt.map(StoredTime.seconds)
      try await session.execute(
        """
        INSERT INTO version (app_id, number, environment, author, created_at, comment, origin, parent,
          restored_from, imported_archive_sha256, imported_app, imported_environment, imported_version,
          backup, synced_at, tree, tree_digest, file_count, total_size)
        VALUES (\(appID), \(version.number), \(version.environment), \(version.author), \(created),
          \(version.comment), \(version.origin.rawValue), \(version.parent), \(version.restoredFrom),
          \(imported?.archiveSHA256.value), \(imported?.app), \(imported?.environment), \(imported?.version),
          \(version.backup), \(synced), \(root), \(version.treeDigest.value), \(version.fileCount),
          \(version.totalSize))
        """)
    }
    try await session.execute(
      "UPDATE app SET next_version = GREATEST(next_version, \(newest + 1)) WHERE id = \(appID)")
  }

  private func copyEnvironment(app: String, _ environment: EnvironmentInfo) async throws {
    let appID = try await Queries.appID(session, app, lock: true)
    let name = environment.name
    if try await session.one("SELECT 1 FROM environment WHERE app_id = \(appID) AND name = \(name)") != nil {
      throw OperationError(.conflict, "environment '\(name)' exists already in app '\(app)'")
    }
    if let head = environment.head {
      _ = try await Queries.version(session, app: app, number: head)  // the head is copied first
    }
    // The unique index on production refuses a second production environment.
    let created = StoredTime.seconds(environment.createdAt)
    guard
      let row = try await session.one(
        """
        INSERT INTO environment (app_id, name, is_production, created_at)
        VALUES (\(appID), \(name), \(environment.isProduction), \(created)) RETURNING id
        """)
    else { throw OperationError(.internal, "environment '\(name)' of app '\(app)' was not added") }
    if let head = environment.head {
      let environmentID = try row.decode(Int64.self)
      let movedAt = StoredTime.seconds(change.at)
      try await session.execute(
        "INSERT INTO head (environment_id, version, moved_at) VALUES (\(environmentID), \(head), \(movedAt))")
    }
  }

  private func copyAudit(app: String, _ entries: [AuditEntry]) async throws {
    _ = try await Queries.appID(session, app, lock: true)
    guard !entries.isEmpty else { return }
    if let entry = entries.first(where: { $0.app != app }) {
      throw OperationError(.internal, "audit entry \(entry.id) is of app '\(entry.app)', not '\(app)'")
    }
    let ids = entries.map(\.id)
    if let taken = try await session.one("SELECT min(id) FROM audit WHERE id = ANY(\(ids))"),
      let id = try taken.decode(Int64?.self)
    {
      throw OperationError(.conflict, "the audit log has an entry \(id) already")
    }
    // One statement for the batch. An array parameter holds no NULL, so a missing environment, version
    // or archive digest travels as a value none can have ('' or 0) and is turned back by NULLIF.
    try await session.execute(
      """
      INSERT INTO audit (id, at, author, app, environment, action, version, archive_sha256, detail)
      SELECT id, at, author, app, NULLIF(environment, ''), action, NULLIF(version, 0), NULLIF(archive, ''), detail
      FROM unnest(\(ids)::bigint[], \(entries.map { StoredTime.seconds($0.at) })::bigint[],
        \(entries.map(\.author))::text[], \(entries.map(\.app))::text[], \(entries.map { $0.environment ?? "" })::text[],
        \(entries.map(\.action.rawValue))::text[], \(entries.map { Int64($0.version ?? 0) })::bigint[],
        \(entries.map { $0.archiveSHA256?.value ?? "" })::text[], \(entries.map(\.detail))::text[])
        AS entry (id, at, author, app, environment, action, version, archive, detail)
      """)
    // The ids were given, not drawn: the sequence moves past them, so the next entry gets a new one.
    try await session.execute(
      "SELECT setval(pg_get_serial_sequence('audit', 'id'), GREATEST((SELECT max(id) FROM audit), \(ids.max()!)))")
  }
}
