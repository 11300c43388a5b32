import Foundation
import GRDB
import Logging

/// The embedded store: one SQLite database (WAL) in a folder, through GRDB.
///
/// Writers take SQLite's write lock for the whole of one change (`BEGIN IMMEDIATE`), so version
/// numbers and head moves of concurrent processes never interleave; a writer that cannot get the
/// lock within `lockTimeout` fails with `.temporaryFailure`.
public final class SQLiteStore: VersionStore {
  public static let databaseName = "confvault.sqlite"

  public let folder: String
  private let pool: DatabasePool
  private let logger: Logger

  /// Opens the store in `folder`.
  ///
  /// - Parameter create: make the folder and the database if they do not exist (only `init` does).
  /// - Throws: `OperationError` when there is no store and `create` is false.
  public init(folder: String, create: Bool, lockTimeout: TimeInterval = 30, logger: Logger) throws {
    self.folder = folder
    self.logger = logger
    let path = folder + "/" + SQLiteStore.databaseName
    if !FileManager.default.fileExists(atPath: path) {
      guard create else {
        throw OperationError(
          .inputUnreadable,
          "no store at `\(folder)`; create one with `confvault init --app NAME` or name it with --store")
      }
      do {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
      } catch {
        throw OperationError(
          .cannotCreateOutput, "cannot create the store folder `\(folder)`: \(error.localizedDescription)")
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
    pool = try StoreFailure.mapping(folder) { try DatabasePool(path: path, configuration: configuration) }
    try StoreFailure.mapping(folder) {
      let migrator = Migrations.migrator
      if try !pool.read({ try migrator.hasCompletedMigrations($0) }) {
        try migrator.migrate(pool)
        logger.info("store schema migrated", metadata: ["store": "\(folder)"])
      }
    }
  }

  // MARK: Reading

  public func apps() throws -> [AppInfo] {
    try reading { db in
      try String.fetchAll(db, sql: "SELECT name FROM app ORDER BY name").map { try Queries.app(db, $0) }
    }
  }

  public func app(_ name: String) throws -> AppInfo {
    try reading { db in try Queries.app(db, name) }
  }

  public func versions(app: String, environment: String?, before: Int?, limit: Int) throws -> [Version] {
    try reading { db in
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
      return try Row.fetchAll(db, sql: sql, arguments: arguments).map { Queries.version($0, app: app) }
    }
  }

  public func version(app: String, number: Int) throws -> Version {
    try reading { db in try Queries.version(db, app: app, number: number) }
  }

  public func files(app: String, number: Int) throws -> [ManifestFile] {
    try reading { db in
      let root = try Queries.treeRoot(db, app: app, number: number)
      return try Queries.flatten(db, node: root).sorted { EntryPath.byteOrder($0.path, $1.path) }
    }
  }

  public func changedFiles(app: String, from: Int?, to: Int) throws -> [FileChange] {
    try reading { db in
      let new = try Queries.treeRoot(db, app: app, number: to)
      let old = try from.map { try Queries.treeRoot(db, app: app, number: $0) }
      var changes: [FileChange] = []
      try Queries.diff(db, old: old, new: new, prefix: "", into: &changes)
      return changes.sorted { EntryPath.byteOrder($0.path, $1.path) }
    }
  }

  public func readBlob(_ digest: SHA256Hex, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
    try reading { db in
      // Every stored blob has at least one chunk (an empty file has an empty one), so no chunk means no blob.
      let rows = try Row.fetchCursor(
        db.cachedStatement(sql: "SELECT zstd, data FROM blob_chunk WHERE blob = ? ORDER BY seq"),
        arguments: [Data(hexDigest: digest)])
      var buffer = Data()
      var chunks = 0
      while let row = try rows.next() {
        try BlobCodec.decode(row["data"], compressed: row["zstd"], into: &buffer)
        try buffer.withUnsafeBytes { try body($0) }
        chunks += 1
      }
      guard chunks > 0 else {
        throw OperationError(.operationFailed, "blob \(digest) is missing from the store; run `confvault check`")
      }
    }
  }

  public func audit(app: String?, limit: Int) throws -> [AuditEntry] {
    try reading { db in
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

  // MARK: Writing

  public func write<T>(_ body: (any StoreTransaction) throws -> T) throws -> T {
    try StoreFailure.mapping(folder) {
      try pool.writeWithoutTransaction { db in
        var result: T?
        try db.inTransaction(.immediate) {
          result = try body(SQLiteTransaction(db: db))
          return .commit
        }
        return result!
      }
    }
  }

  public func createApp(_ name: String, environments: [String], production: String?, author: String) throws {
    try write { transaction in
      let tx = transaction as! SQLiteTransaction
      try tx.createApp(name, environments: environments, production: production, author: author)
    }
  }

  public func createEnvironment(app: String, name: String, production: Bool, author: String) throws {
    try write { transaction in
      let tx = transaction as! SQLiteTransaction
      try tx.createEnvironment(app: app, name: name, production: production, author: author)
    }
  }

  public func deleteEnvironment(app: String, name: String, author: String) throws {
    try write { transaction in
      let tx = transaction as! SQLiteTransaction
      try tx.deleteEnvironment(app: app, name: name, author: author)
    }
  }

  // MARK: Checking

  public func check() throws -> CheckReport {
    try reading { db in try StoreCheck(db: db).run() }
  }

  public func collectGarbage() throws -> Int {
    try write { transaction in
      let db = (transaction as! SQLiteTransaction).db
      let unreferenced = "SELECT sha256 FROM blob WHERE sha256 NOT IN (SELECT target FROM tree_entry)"
      let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM (\(unreferenced))") ?? 0
      try db.execute(sql: "DELETE FROM blob_chunk WHERE blob IN (\(unreferenced))")
      try db.execute(sql: "DELETE FROM blob WHERE sha256 IN (\(unreferenced))")
      try db.execute(sql: "DELETE FROM blob_chunk WHERE blob NOT IN (SELECT sha256 FROM blob)")
      return count
    }
  }

  private func reading<T>(_ body: (Database) throws -> T) throws -> T {
    try StoreFailure.mapping(folder) { try pool.read(body) }
  }
}

/// Turns SQLite's failures into Confvault's: locked (75), disk full (74), not writable (77).
enum StoreFailure {
  static func mapping<T>(_ folder: String, _ body: () throws -> T) throws -> T {
    do {
      return try body()
    } catch let error as DatabaseError {
      switch error.resultCode {
      case .SQLITE_BUSY, .SQLITE_LOCKED:
        throw OperationError(
          .temporaryFailure, "the store `\(folder)` is busy with another confvault process; try again")
      case .SQLITE_FULL:
        throw OperationError(.ioError, "the disk holding the store `\(folder)` is full; nothing was changed")
      case .SQLITE_IOERR:
        throw OperationError(.ioError, "I/O error on the store `\(folder)`: \(error.message ?? "")")
      case .SQLITE_READONLY, .SQLITE_PERM, .SQLITE_AUTH:
        throw OperationError(.permissionDenied, "the store `\(folder)` is not writable: \(error.message ?? "")")
      case .SQLITE_CANTOPEN:
        throw OperationError(.inputUnreadable, "cannot open the store `\(folder)`: \(error.message ?? "")")
      case .SQLITE_CORRUPT, .SQLITE_NOTADB:
        throw OperationError(.operationFailed, "the store `\(folder)` is damaged: \(error.message ?? "")")
      default:
        throw OperationError(.operationFailed, "store `\(folder)`: \(error.message ?? "\(error)")")
      }
    }
  }
}

extension Data {
  /// The 32 bytes of a SHA-256 given in hexadecimal.
  init(hexDigest digest: SHA256Hex) {
    var bytes = [UInt8]()
    bytes.reserveCapacity(32)
    var iterator = digest.value.utf8.makeIterator()
    func nibble(_ c: UInt8) -> UInt8 { c <= 0x39 ? c - 0x30 : c - 0x61 + 10 }
    while let high = iterator.next(), let low = iterator.next() {
      bytes.append(nibble(high) << 4 | nibble(low))
    }
    self.init(bytes)
  }
}

extension SHA256Hex {
  init(bytes: Data) { self.init(hexString(bytes))! }
}
