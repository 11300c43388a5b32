import Foundation
import GRDB

/// One write transaction of the SQLite store.
final class SQLiteTransaction: StoreTransaction {
  let db: Database

  init(db: Database) { self.db = db }

  func blobSink() -> any ArchiveFileSink { BlobWritingSink(db: db) }

  func hasBlob(_ digest: SHA256Hex) throws -> Bool {
    try Bool.fetchOne(
      db.cachedStatement(sql: "SELECT 1 FROM blob WHERE sha256 = ?"), arguments: [Data(hexDigest: digest)]) == true
  }

  func app(_ name: String) throws -> AppInfo { try Queries.app(db, name) }

  func version(app: String, number: Int) throws -> Version {
    try Queries.version(db, app: app, number: number)
  }

  func createApp(_ name: String, environments: [String], production: String?, author: String) throws {
    if try Int64.fetchOne(db, sql: "SELECT id FROM app WHERE name = ?", arguments: [name]) != nil {
      throw OperationError(.operationFailed, "app '\(name)' exists already")
    }
    let now = Int64(Timestamp.now().timeIntervalSince1970)
    try db.execute(sql: "INSERT INTO app (name, created_at) VALUES (?, ?)", arguments: [name, now])
    try appendAudit(
      AuditEntry(
        at: Timestamp.now(), author: author, app: name, environment: nil, action: "init", version: nil,
        archiveSHA256: nil, detail: "app created"))
    for environment in environments {
      try createEnvironment(app: name, name: environment, production: environment == production, author: author)
    }
  }

  func createEnvironment(app: String, name: String, production: Bool, author: String) throws {
    let appID = try Queries.appID(db, app)
    if try Int64.fetchOne(
      db, sql: "SELECT id FROM environment WHERE app_id = ? AND name = ?", arguments: [appID, name]) != nil
    {
      throw OperationError(.operationFailed, "environment '\(name)' exists already in app '\(app)'")
    }
    if production,
      let current = try String.fetchOne(
        db, sql: "SELECT name FROM environment WHERE app_id = ? AND is_production = 1", arguments: [appID])
    {
      throw OperationError(
        .operationFailed, "app '\(app)' has a production environment already: '\(current)'")
    }
    try db.execute(
      sql: "INSERT INTO environment (app_id, name, is_production, created_at) VALUES (?, ?, ?, ?)",
      arguments: [appID, name, production, Int64(Timestamp.now().timeIntervalSince1970)])
    try appendAudit(
      AuditEntry(
        at: Timestamp.now(), author: author, app: app, environment: name, action: "env-create", version: nil,
        archiveSHA256: nil, detail: production ? "production environment created" : "environment created"))
  }

  func deleteEnvironment(app: String, name: String, author: String) throws {
    let info = try Queries.app(db, app)
    let environment = try info.environment(name)
    if environment.isProduction {
      throw OperationError(
        .operationFailed, "'\(name)' is the production environment of '\(app)'; it cannot be deleted")
    }
    let appID = try Queries.appID(db, app)
    try db.execute(
      sql: "DELETE FROM head WHERE environment_id = (SELECT id FROM environment WHERE app_id = ? AND name = ?)",
      arguments: [appID, name])
    try db.execute(sql: "DELETE FROM environment WHERE app_id = ? AND name = ?", arguments: [appID, name])
    try appendAudit(
      AuditEntry(
        at: Timestamp.now(), author: author, app: app, environment: name, action: "env-delete",
        version: environment.head, archiveSHA256: nil,
        detail: "environment deleted; its versions stay in the history"))
  }

  func addVersion(_ draft: VersionDraft, pinReplacedHead: Bool) throws -> Version {
    let appID = try Queries.appID(db, draft.app)
    let environment = try Queries.app(db, draft.app).environment(draft.environment)
    for file in draft.files where try !hasBlob(file.sha256) {
      throw OperationError(.operationFailed, "internal: the content of `\(file.path)` was not stored")
    }
    let root = try storeTree(draft.files)
    guard
      let number = try Int.fetchOne(
        db, sql: "UPDATE app SET next_version = next_version + 1 WHERE id = ? RETURNING next_version - 1",
        arguments: [appID])
    else { throw OperationError(.operationFailed, "app '\(draft.app)' vanished") }
    let digest = TreeDigest(files: draft.files)
    let totalSize = draft.files.reduce(Int64(0)) { $0 + $1.size }
    try db.execute(
      sql: """
        INSERT INTO version (app_id, number, environment, author, created_at, comment, origin, parent,
          restored_from, imported_archive_sha256, imported_app, imported_environment, imported_version,
          backup, synced_at, tree, tree_digest, file_count, total_size)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?)
        """,
      arguments: [
        appID, number, draft.environment, draft.author, Int64(draft.createdAt.timeIntervalSince1970),
        draft.comment, draft.origin.rawValue, environment.head, draft.restoredFrom,
        draft.importedFrom?.archiveSHA256, draft.importedFrom?.app, draft.importedFrom?.environment,
        draft.importedFrom?.version, draft.backup, root, digest.value, draft.files.count, totalSize,
      ])
    if pinReplacedHead, let previous = environment.head {
      try pin(appID: appID, number: previous)
    }
    try setHead(appID: appID, environment: draft.environment, number: number)
    return try Queries.version(db, app: draft.app, number: number)
  }

  func moveHead(app: String, environment: String, to number: Int) throws {
    let appID = try Queries.appID(db, app)
    let current = try Queries.app(db, app).environment(environment)
    _ = try Queries.version(db, app: app, number: number)
    if let previous = current.head { try pin(appID: appID, number: previous) }
    try setHead(appID: appID, environment: environment, number: number)
  }

  func markSynced(app: String, number: Int, at date: Date) throws {
    let appID = try Queries.appID(db, app)
    try db.execute(
      sql: "UPDATE version SET synced_at = ?, backup = 1 WHERE app_id = ? AND number = ?",
      arguments: [Int64(date.timeIntervalSince1970), appID, number])
  }

  func pin(app: String, number: Int) throws {
    try pin(appID: try Queries.appID(db, app), number: number)
  }

  func appendAudit(_ entry: AuditEntry) throws {
    try db.execute(
      sql: """
        INSERT INTO audit (at, author, app, environment, action, version, archive_sha256, detail)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        """,
      arguments: [
        Int64(entry.at.timeIntervalSince1970), entry.author, entry.app, entry.environment, entry.action,
        entry.version, entry.archiveSHA256, entry.detail,
      ])
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
      arguments: [appID, environment, number, Int64(Timestamp.now().timeIntervalSince1970)])
  }

  /// Stores the folders of `files` that are not stored yet; returns the root folder's digest.
  private func storeTree(_ files: [ManifestFile]) throws -> Data {
    var root = Data()
    for (digest, node) in TreeNode.build(files) {
      root = digest
      try db.cachedStatement(sql: "INSERT OR IGNORE INTO tree_node (digest) VALUES (?)").execute(arguments: [digest])
      guard db.changesCount > 0 else { continue }
      for entry in node.entries {
        switch entry {
        case .file(let name, let mode, let size, let blob):
          try db.cachedStatement(
            sql: "INSERT INTO tree_entry (node, name, is_folder, executable, size, target) VALUES (?, ?, 0, ?, ?, ?)"
          ).execute(arguments: [digest, name, mode == .executable, size, Data(hexDigest: blob)])
        case .folder(let name, let child):
          try db.cachedStatement(
            sql: "INSERT INTO tree_entry (node, name, is_folder, executable, size, target) VALUES (?, ?, 1, 0, 0, ?)"
          ).execute(arguments: [digest, name, child])
        }
      }
    }
    return root
  }
}

/// Stores each streamed file as a content-addressed blob, chunk by chunk, inside a write transaction.
///
/// A file larger than one chunk is written under a random placeholder key while it streams (its
/// SHA-256 is known only at the end), then renamed to its digest, or dropped if that blob exists.
final class BlobWritingSink: ArchiveFileSink {
  private let db: Database
  private let compressor = BlobCodec.Compressor()
  private var buffer = Data()
  private var placeholder: Data?
  private var sequence = 0
  private var storedSize: Int64 = 0

  init(db: Database) {
    self.db = db
    buffer.reserveCapacity(BlobCodec.chunkSize)
  }

  func beginFile(path: String, mode: FileMode) throws {
    buffer.removeAll(keepingCapacity: true)
    placeholder = nil
    sequence = 0
    storedSize = 0
  }

  func write(_ bytes: UnsafeRawBufferPointer) throws {
    var rest = bytes
    while !rest.isEmpty {
      let take = min(rest.count, BlobCodec.chunkSize - buffer.count)
      buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: rest[0..<take]))
      rest = UnsafeRawBufferPointer(rebasing: rest[take...])
      if buffer.count == BlobCodec.chunkSize {
        if placeholder == nil { placeholder = Data((0..<32).map { _ in UInt8.random(in: 0...255) }) }
        try storeChunk(key: placeholder!)
      }
    }
  }

  func endFile(_ file: ManifestFile) throws {
    let key = Data(hexDigest: file.sha256)
    let exists =
      try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM blob WHERE sha256 = ?"), arguments: [key]) == true
    if exists {
      if let placeholder {
        try db.execute(sql: "DELETE FROM blob_chunk WHERE blob = ?", arguments: [placeholder])
      }
      return
    }
    if !buffer.isEmpty || placeholder == nil {
      try storeChunk(key: placeholder ?? key)
    }
    if let placeholder {
      try db.execute(sql: "UPDATE blob_chunk SET blob = ? WHERE blob = ?", arguments: [key, placeholder])
    }
    try db.cachedStatement(sql: "INSERT INTO blob (sha256, size, stored_size, chunk_count) VALUES (?, ?, ?, ?)")
      .execute(arguments: [key, file.size, storedSize, sequence])
  }

  private func storeChunk(key: Data) throws {
    let encoded = buffer.withUnsafeBytes { compressor.encode($0) }
    try db.cachedStatement(sql: "INSERT INTO blob_chunk (blob, seq, zstd, data) VALUES (?, ?, ?, ?)")
      .execute(arguments: [key, sequence, encoded.compressed, encoded.data])
    sequence += 1
    storedSize += Int64(encoded.data.count)
    buffer.removeAll(keepingCapacity: true)
  }
}
