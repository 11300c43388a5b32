import ConfvaultCore
import Foundation
import PostgresNIO

/// Applies one `StoreChange` inside a write transaction: first the app's row is locked (`FOR UPDATE`),
/// so that changes to one app from every server are serialised; then the heads the change was decided
/// against are compared; then the writes, then its audit entry.
///
/// The transaction is READ COMMITTED: each statement after the lock sees what the previous holder of
/// the lock committed, so a head read here is the head, not a snapshot older than the lock.
struct ChangeWriter: Sendable {
  let session: SQLSession
  let change: StoreChange

  private var at: Int64 { StoredTime.seconds(change.at) }

  func apply() async throws -> Version? {
    switch change.operation {
    case .createApp(let name, let environments, let production):
      try await createApp(name, environments: environments, production: production)
      return nil
    case .createEnvironment(let app, let name, let production):
      let appID = try await Queries.appID(session, app, lock: true)
      try await createEnvironment(app: app, appID: appID, name: name, production: production, detail: change.detail)
      return nil
    case .setProduction(let app, let name):
      try await setProduction(app: app, name: name)
      return nil
    case .deleteEnvironment(let app, let name, let expectedHead):
      try await deleteEnvironment(app: app, name: name, expectedHead: expectedHead)
      return nil
    case .addVersion(let draft, let expectedHead):
      return try await addVersion(draft, expectedHead: expectedHead)
    case .sync(let app, let environment, let number, let expectedHead):
      return try await sync(app: app, environment: environment, number: number, expectedHead: expectedHead)
    case .note(let app, let environment, let action, let version):
      _ = try await Queries.appID(session, app, lock: true)
      try await appendAudit(app: app, environment: environment, action: action, version: version)
      return nil
    case .copyApp, .copyVersions, .copyEnvironment, .copyAudit:
      return try await applyCopy()
    }
  }

  private func createApp(_ name: String, environments: [String], production: String?) async throws {
    // Two servers creating the same app: the second waits on the first's row, then inserts nothing.
    guard
      let row = try await session.one(
        "INSERT INTO app (name, created_at) VALUES (\(name), \(at)) ON CONFLICT (name) DO NOTHING RETURNING id")
    else { throw OperationError(.conflict, "app '\(name)' exists already") }
    let appID = try row.decode(Int64.self)
    try await appendAudit(app: name, environment: nil, action: .`init`, version: nil)
    for environment in environments {
      try await createEnvironment(
        app: name, appID: appID, name: environment, production: environment == production,
        detail: environment == production ? "production environment created" : "environment created")
    }
  }

  private func createEnvironment(app: String, appID: Int64, name: String, production: Bool, detail: String)
    async throws
  {
    if try await session.one("SELECT 1 FROM environment WHERE app_id = \(appID) AND name = \(name)") != nil {
      throw OperationError(.conflict, "environment '\(name)' exists already in app '\(app)'")
    }
    if production,
      let current = try await session.one(
        "SELECT name FROM environment WHERE app_id = \(appID) AND is_production")
    {
      throw OperationError(
        .conflict, "app '\(app)' has a production environment already: '\(try current.decode(String.self))'")
    }
    try await session.execute(
      """
      INSERT INTO environment (app_id, name, is_production, created_at) VALUES (\(appID), \(name), \(production), \(at))
      """)
    try await appendAudit(app: app, environment: name, action: .environmentCreate, version: nil, detail: detail)
  }

  private func setProduction(app: String, name: String) async throws {
    let appID = try await Queries.appID(session, app, lock: true)
    let environment = try await Queries.app(session, app).environment(name)
    guard !environment.isProduction else {
      throw OperationError(.operationFailed, "'\(name)' is the production environment of '\(app)' already")
    }
    try await session.execute("UPDATE environment SET is_production = false WHERE app_id = \(appID)")
    try await session.execute(
      "UPDATE environment SET is_production = true WHERE app_id = \(appID) AND name = \(name)")
    try await appendAudit(
      app: app, environment: name, action: .environmentSetProduction, version: nil, detail: change.detail)
  }

  private func deleteEnvironment(app: String, name: String, expectedHead: Int?) async throws {
    let appID = try await Queries.appID(session, app, lock: true)
    let environment = try await Queries.app(session, app).environment(name)
    if environment.isProduction {
      throw OperationError(
        .operationFailed, "'\(name)' is the production environment of '\(app)'; it cannot be deleted")
    }
    try checkHead(environment, app: app, expected: expectedHead)
    try await session.execute(
      """
      DELETE FROM head WHERE environment_id = (SELECT id FROM environment WHERE app_id = \(appID) AND name = \(name))
      """)
    try await session.execute("DELETE FROM environment WHERE app_id = \(appID) AND name = \(name)")
    try await appendAudit(app: app, environment: name, action: .environmentDelete, version: environment.head)
  }

  private func addVersion(_ draft: VersionDraft, expectedHead: Int?) async throws -> Version {
    let appID = try await Queries.appID(session, draft.app, lock: true)
    let environment = try await Queries.app(session, draft.app).environment(draft.environment)
    try checkHead(environment, app: draft.app, expected: expectedHead)
    // FOR KEY SHARE holds the blobs until the commit: `gc` on another server cannot remove one this
    // version is about to refer to (see `PostgresStore.collectGarbage`).
    let wanted = Set(draft.files.map(\.sha256))
    let present = try await session.rows(
      "SELECT sha256 FROM blob WHERE sha256 = ANY(\(wanted.map(\.bytes.buffer))) FOR KEY SHARE"
    ).map { try Queries.digest($0.decode(Data.self)) }
    let missing = wanted.subtracting(present)
    if let file = draft.files.first(where: { missing.contains($0.sha256) }) {
      throw OperationError(.internal, "the content of `\(file.path)` (\(file.sha256)) was not stored first")
    }
    var head: Data?
    if let number = environment.head { head = try await Queries.treeRoot(session, app: draft.app, number: number) }
    let root = try await storeTree(draft.tree, head: head)
    guard
      let row = try await session.one(
        "UPDATE app SET next_version = next_version + 1 WHERE id = \(appID) RETURNING next_version - 1")
    else { throw OperationError(.notFound, "app '\(draft.app)' vanished") }
    let number = try row.decode(Int.self)
    let digest = draft.tree.digest
    let totalSize = draft.files.reduce(Int64(0)) { $0 + $1.size }
    let imported = draft.importedFrom
    try await session.execute(
      """
      INSERT INTO version (app_id, number, environment, author, created_at, comment, origin, parent,
        restored_from, imported_archive_sha256, imported_app, imported_environment, imported_version,
        backup, synced_at, tree, tree_digest, file_count, total_size)
      VALUES (\(appID), \(number), \(draft.environment), \(change.author), \(at), \(draft.comment),
        \(draft.origin.rawValue), \(environment.head), \(draft.restoredFrom), \(imported?.archiveSHA256.value),
        \(imported?.app), \(imported?.environment), \(imported?.version), \(draft.backup), NULL, \(root),
        \(digest.value), \(draft.files.count), \(totalSize))
      """)
    if draft.pinsReplacedHead, let previous = environment.head {
      try await pin(appID: appID, number: previous)
    }
    try await setHead(appID: appID, environment: draft.environment, number: number)
    try await appendAudit(
      app: draft.app, environment: draft.environment, action: AuditAction(draft.origin), version: number)
    return try await Queries.version(session, app: draft.app, number: number)
  }

  private func sync(app: String, environment name: String, number: Int, expectedHead: Int?) async throws -> Version {
    let appID = try await Queries.appID(session, app, lock: true)
    let environment = try await Queries.app(session, app).environment(name)
    try checkHead(environment, app: app, expected: expectedHead)
    _ = try await Queries.version(session, app: app, number: number)
    if environment.head != number {
      if let previous = environment.head { try await pin(appID: appID, number: previous) }
      try await setHead(appID: appID, environment: name, number: number)
    }
    if environment.isProduction {
      try await session.execute(
        "UPDATE version SET synced_at = \(at), backup = true WHERE app_id = \(appID) AND number = \(number)")
    } else {
      try await pin(appID: appID, number: number)  // synced-at is for production only
    }
    try await appendAudit(app: app, environment: name, action: .sync, version: number)
    return try await Queries.version(session, app: app, number: number)
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

  private func pin(appID: Int64, number: Int) async throws {
    try await session.execute("UPDATE version SET backup = true WHERE app_id = \(appID) AND number = \(number)")
  }

  private func setHead(appID: Int64, environment: String, number: Int) async throws {
    try await session.execute(
      """
      INSERT INTO head (environment_id, version, moved_at)
      VALUES ((SELECT id FROM environment WHERE app_id = \(appID) AND name = \(environment)), \(number), \(at))
      ON CONFLICT (environment_id) DO UPDATE SET version = excluded.version, moved_at = excluded.moved_at
      """)
  }

  private func appendAudit(
    app: String, environment: String?, action: AuditAction, version: Int?, detail: String? = nil
  ) async throws {
    try await session.execute(
      """
      INSERT INTO audit (at, author, app, environment, action, version, archive_sha256, detail)
      VALUES (\(at), \(change.author), \(app), \(environment), \(action.rawValue), \(version),
        \(change.archiveSHA256?.value), \(detail ?? change.detail))
      """)
  }

  /// Stores the folders of `tree` that are not stored yet, each new one as a delta against the
  /// folder at its path in the tree `head` where that pays; returns the root folder's digest.
  func storeTree(_ tree: VersionTree, head: Data?) async throws -> Data {
    let folders = tree.folders
    let stored = Set(
      try await session.rows("SELECT digest FROM tree_node WHERE digest = ANY(\(folders.map(\.digest.buffer)))")
        .map { try $0.decode(Data.self) })
    let new = folders.filter { !stored.contains($0.digest) }
    let bases = try await Queries.records(session, alongPaths: Set(new.map(\.path)), in: head)
    let records = try Queries.reader(bases).records(for: new, head: head) { _ in false }
    try await Queries.insert(session, records)
    return tree.root
  }
}
