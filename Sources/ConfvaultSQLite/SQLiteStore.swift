import ConfvaultCore
import Foundation
import GRDB
import Logging

/// The embedded store: one SQLite database (WAL) in a folder, through GRDB.
///
/// Each change is one short `BEGIN IMMEDIATE` transaction that first compares the heads it names, so
/// version numbers and head moves of concurrent processes never interleave and a change decided on a
/// moved head is refused. A writer that cannot get the lock within `lockTimeout` fails with
/// `.temporaryFailure`. Every access runs on GRDB's own queues, never on the caller's thread.
public final class SQLiteStore: VersionStore {
  public static let databaseName = "confvault.sqlite"

  public let folder: String
  private let pool: DatabasePool

  /// Opens the store in `folder`.
  ///
  /// - Parameter create: make the folder and the database if they do not exist (only creating an app does).
  /// - Throws: `.inputUnreadable` with the hint `.createStore` when there is no store and `create` is false.
  public init(folder: String, create: Bool, lockTimeout: TimeInterval = 30, logger: Logger) throws {
    self.folder = folder
    let path = folder + "/" + SQLiteStore.databaseName
    if !FileManager.default.fileExists(atPath: path) {
      guard create else {
        throw OperationError(.inputUnreadable, "no store at `\(folder)`", hint: .createStore)
      }
      do {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
      } catch {
        throw OperationError(
          .cannotCreateOutput, "cannot create the store folder `\(folder)`: \(error.localizedDescription)",
          cause: error)
      }
    }
    var configuration = Configuration()
    configuration.busyMode = .timeout(lockTimeout)
    configuration.prepareDatabase { db in
      // FULL: a committed version survives a power cut, not only a killed process.
      try db.execute(sql: "PRAGMA synchronous = FULL")
    }
    if create {
      // Compressed files of a few KiB pack into 16 KiB pages with far less waste than into 4 KiB ones.
      // The page size is fixed when the first table is made, before WAL mode is on.
      try StoreFailure.mapping(folder) {
        let queue = try DatabaseQueue(path: path)  // closed again when this closure returns
        try queue.writeWithoutTransaction { db in
          if try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sqlite_master") == 0 {
            try db.execute(sql: "PRAGMA page_size = 16384; VACUUM")
          }
        }
      }
    }
    let pool = try StoreFailure.mapping(folder) { try DatabasePool(path: path, configuration: configuration) }
    self.pool = pool
    try StoreFailure.mapping(folder) {
      let migrator = Migrations.migrator
      if try !pool.read({ try migrator.hasCompletedMigrations($0) }) {
        try migrator.migrate(pool)
        logger.info("store schema migrated", metadata: ["store": "\(folder)"])
      }
    }
  }

  public var stagingFolder: String { folder + "/staging" }

  // MARK: Reading

  public func apps() async throws -> [AppInfo] {
    try await reading { db in
      try String.fetchAll(db, sql: "SELECT name FROM app ORDER BY name").map { try Queries.app(db, $0) }
    }
  }

  public func app(_ name: String) async throws -> AppInfo {
    try await reading { db in try Queries.app(db, name) }
  }

  public func versions(app: String, environment: String?, before: Int?, limit: Int) async throws -> [Version] {
    try await reading { db in
      let appID = try Queries.appID(db, app)
      var sql = "SELECT * FROM version WHERE app_id = ?"
      var arguments: StatementArguments = [appID]
      if let environment {
        sql += " AND environment = ?"
        arguments += [environment]
      }
      if let before {
        sql += " AND number < ?"
        arguments += [before]
      }
      sql += " ORDER BY number DESC LIMIT ?"
      arguments += [limit]
      return try Row.fetchAll(db, sql: sql, arguments: arguments).map { try Queries.version($0, app: app) }
    }
  }

  public func version(app: String, number: Int) async throws -> Version {
    try await reading { db in try Queries.version(db, app: app, number: number) }
  }

  public func files(app: String, number: Int) async throws -> [ManifestFile] {
    try await reading { db in
      let root = try Queries.treeRoot(db, app: app, number: number)
      return try Queries.flatten(db, node: root).sorted { EntryPath.byteOrder($0.path, $1.path) }
    }
  }

  public func changedFiles(app: String, from: Int?, to: Int) async throws -> [FileChange] {
    try await reading { db in
      let new = try Queries.treeRoot(db, app: app, number: to)
      let old = try from.map { try Queries.treeRoot(db, app: app, number: $0) }
      var changes: [FileChange] = []
      try Queries.diff(db, old: old, new: new, prefix: "", into: &changes)
      return changes.sorted { EntryPath.byteOrder($0.path, $1.path) }
    }
  }

  public func audit(app: String?, limit: Int) async throws -> [AuditEntry] {
    try await reading { db in
      var sql = "SELECT * FROM audit"
      var arguments: StatementArguments = []
      if let app {
        sql += " WHERE app = ?"
        arguments += [app]
      }
      sql += " ORDER BY id DESC LIMIT ?"
      arguments += [limit]
      return try Row.fetchAll(db, sql: sql, arguments: arguments).map(Queries.auditEntry).reversed()
    }
  }

  // MARK: Content

  public func readBlob(_ digest: SHA256Hex, _ body: (UnsafeRawBufferPointer) throws -> Void) async throws {
    let key = digest.bytes
    // One read for the common one-chunk blob; a larger blob reads one more chunk at a time, so memory
    // stays at a chunk. A blob never changes once stored, so the chunks need no common snapshot.
    let first = try await reading { db -> (chunks: Int, chunk: StoredChunk?)? in
      guard
        let row = try Row.fetchOne(
          db.cachedStatement(
            sql: """
              SELECT b.chunk_count, c.zstd, c.data FROM blob b
              LEFT JOIN blob_chunk c ON c.blob = b.sha256 AND c.seq = 0 WHERE b.sha256 = ?
              """), arguments: [key])
      else { return nil }
      let data: Data? = row["data"]
      return (row["chunk_count"], data.map { StoredChunk(data: $0, compressed: row["zstd"]) })
    }
    guard let first else {
      throw OperationError(.internal, "blob \(digest) is missing from the store", hint: .runCheck)
    }
    var buffer = Data()
    for seq in 0..<first.chunks {
      let stored =
        seq == 0
        ? first.chunk
        : try await reading { db in
          try Row.fetchOne(
            db.cachedStatement(sql: "SELECT zstd, data FROM blob_chunk WHERE blob = ? AND seq = ?"),
            arguments: [key, seq]
          ).map { StoredChunk(data: $0["data"], compressed: $0["zstd"]) }
        }
      guard let stored else {
        throw OperationError(.internal, "blob \(digest) is missing its chunk \(seq)", hint: .runCheck)
      }
      try BlobCodec.decode(stored.data, compressed: stored.compressed, into: &buffer)
      try buffer.withUnsafeBytes { try body($0) }
    }
  }

  public func missingBlobs(_ digests: [SHA256Hex]) async throws -> Set<SHA256Hex> {
    try await reading { db in
      let statement = try db.cachedStatement(sql: "SELECT 1 FROM blob WHERE sha256 = ?")
      var missing = Set<SHA256Hex>()
      for digest in Set(digests) where try Bool.fetchOne(statement, arguments: [digest.bytes]) != true {
        missing.insert(digest)
      }
      return missing
    }
  }

  /// Stores blobs in transactions of about this many bytes, so the write lock is never held for long.
  private static let bytesPerTransaction: Int64 = 32 << 20

  public func storeBlobs(_ blobs: [BlobFile]) async throws {
    var batch: [BlobFile] = []
    var batchBytes: Int64 = 0
    for blob in blobs {
      batch.append(blob)
      batchBytes += blob.size
      if batchBytes >= SQLiteStore.bytesPerTransaction {
        try await storeBatch(batch)
        batch.removeAll()
        batchBytes = 0
      }
    }
    if !batch.isEmpty { try await storeBatch(batch) }
  }

  private func storeBatch(_ blobs: [BlobFile]) async throws {
    let storedAt = Queries.seconds(Date())
    try await writing { db in
      let writer = try BlobWriter(db: db, storedAt: storedAt)
      for blob in blobs { try writer.store(blob) }
    }
  }

  // MARK: Changing

  @discardableResult
  public func apply(_ change: StoreChange) async throws -> Version? {
    try await writing { db in try ChangeWriter(db: db, change: change).apply() }
  }

  // MARK: Upkeep

  public func check() async throws -> CheckReport {
    try await reading { db in try StoreCheck(db: db).run() }
  }

  public func collectGarbage(grace: TimeInterval) async throws -> Int {
    let cutoff = Queries.seconds(Date()) - Int64(grace)
    return try await writing { db in
      let unreferenced = """
        SELECT sha256 FROM blob WHERE stored_at <= \(cutoff) AND sha256 NOT IN (SELECT target FROM tree_entry)
        """
      let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM (\(unreferenced))") ?? 0
      try db.execute(sql: "DELETE FROM blob_chunk WHERE blob IN (\(unreferenced))")
      try db.execute(sql: "DELETE FROM blob WHERE sha256 IN (\(unreferenced))")
      try db.execute(sql: "DELETE FROM blob_chunk WHERE blob NOT IN (SELECT sha256 FROM blob)")
      return count
    }
  }

  private func reading<T: Sendable>(_ body: @Sendable @escaping (Database) throws -> T) async throws -> T {
    try await StoreFailure.mapping(folder) { try await self.pool.read(body) }
  }

  /// Runs `body` in one `BEGIN IMMEDIATE` transaction: committed whole, or rolled back.
  private func writing<T: Sendable>(_ body: @Sendable @escaping (Database) throws -> T) async throws -> T {
    try await StoreFailure.mapping(folder) {
      try await self.pool.writeWithoutTransaction { db in
        var result: T?
        try db.inTransaction(.immediate) {
          result = try body(db)
          return .commit
        }
        return result!
      }
    }
  }
}

/// A chunk as stored: its bytes, compressed or not.
private struct StoredChunk: Sendable {
  var data: Data
  var compressed: Bool
}

/// Stores files as content-addressed blobs, chunk by chunk, inside one write transaction.
private final class BlobWriter {
  private let db: Database
  private let storedAt: Int64
  private let compressor: BlobCodec.Compressor
  private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: BlobCodec.chunkSize, alignment: 16)
  private let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 << 10, alignment: 16)

  init(db: Database, storedAt: Int64) throws {
    self.db = db
    self.storedAt = storedAt
    compressor = try BlobCodec.Compressor()
  }

  deinit {
    buffer.deallocate()
    readBuffer.deallocate()
  }

  /// Stores `blob` unless it is stored already; its content must still have its digest and size.
  func store(_ blob: BlobFile) throws {
    let key = blob.sha256.bytes
    guard try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM blob WHERE sha256 = ?"), arguments: [key]) != true
    else { return }
    var sequence = 0
    var filled = 0
    var storedSize: Int64 = 0
    func flush() throws {
      let encoded = compressor.encode(UnsafeRawBufferPointer(rebasing: buffer[0..<filled]))
      try db.cachedStatement(sql: "INSERT INTO blob_chunk (blob, seq, zstd, data) VALUES (?, ?, ?, ?)")
        .execute(arguments: [key, sequence, encoded.compressed, encoded.data])
      storedSize += Int64(encoded.data.count)
      sequence += 1
      filled = 0
    }
    try blob.stream(buffer: readBuffer) { chunk in
      var rest = chunk
      while !rest.isEmpty {
        let take = min(rest.count, buffer.count - filled)
        UnsafeMutableRawBufferPointer(rebasing: buffer[filled..<filled + take]).copyMemory(
          from: UnsafeRawBufferPointer(rebasing: rest[0..<take]))
        filled += take
        rest = UnsafeRawBufferPointer(rebasing: rest[take...])
        if filled == buffer.count { try flush() }
      }
    }
    // An empty file is one empty chunk, so every blob has at least one.
    if filled > 0 || sequence == 0 { try flush() }
    try db.cachedStatement(
      sql: "INSERT INTO blob (sha256, size, stored_size, chunk_count, stored_at) VALUES (?, ?, ?, ?, ?)"
    ).execute(arguments: [key, blob.size, storedSize, sequence, storedAt])
  }
}

/// Turns SQLite's failures into Confvault's: locked (75), disk full (74), not writable (77).
enum StoreFailure {
  static func mapping<T>(_ folder: String, _ body: () throws -> T) throws -> T {
    do {
      return try body()
    } catch let error as DatabaseError {
      throw translate(error, folder)
    }
  }

  static func mapping<T>(_ folder: String, _ body: () async throws -> T) async throws -> T {
    do {
      return try await body()
    } catch let error as DatabaseError {
      throw translate(error, folder)
    }
  }

  private static func translate(_ error: DatabaseError, _ folder: String) -> OperationError {
    let message = error.message ?? "\(error)"
    switch error.resultCode {
    case .SQLITE_BUSY, .SQLITE_LOCKED:
      return OperationError(
        .temporaryFailure, "the store `\(folder)` is busy with another confvault process; try again", cause: error)
    case .SQLITE_FULL:
      return OperationError(
        .ioError, "the disk holding the store `\(folder)` is full; nothing was changed", cause: error)
    case .SQLITE_IOERR:
      return OperationError(.ioError, "I/O error on the store `\(folder)`: \(message)", cause: error)
    case .SQLITE_READONLY, .SQLITE_PERM, .SQLITE_AUTH:
      return OperationError(.permissionDenied, "the store `\(folder)` is not writable: \(message)", cause: error)
    case .SQLITE_CANTOPEN:
      return OperationError(.inputUnreadable, "cannot open the store `\(folder)`: \(message)", cause: error)
    case .SQLITE_CORRUPT, .SQLITE_NOTADB:
      return OperationError(.internal, "the store `\(folder)` is damaged: \(message)", hint: .runCheck, cause: error)
    case .SQLITE_CONSTRAINT:
      return OperationError(.conflict, "store `\(folder)`: \(message)", cause: error)
    default:
      return OperationError(.internal, "store `\(folder)`: \(message)", cause: error)
    }
  }
}
