import ConfvaultCore
import Foundation
import GRDB
import GRDBSQLite
import Logging
import Synchronization

/// The embedded store: one SQLite database (WAL) in a folder, through GRDB.
///
/// Each change is one short `BEGIN IMMEDIATE` transaction that first compares the heads it names, so
/// version numbers and head moves of concurrent processes never interleave and a change decided on a
/// moved head is refused. A writer that cannot get the lock within `lockTimeout` fails with
/// `.temporaryFailure`. Every access runs on GRDB's own queues, never on the caller's thread.
///
/// A store opened `.readOnly` reads through one read-only connection and writes nothing, not even
/// when it is opened, so it is read on a read-only mount, by a user who may only read it, and on a
/// full disk. A store written by a newer confvault is refused, whatever the access, before anything
/// is written.
public final class SQLiteStore: VersionStore {
  /// What the process means to do with the store.
  public enum Access: Sendable {
    /// Only read: nothing is written (but a store an older confvault wrote is converted first, by a
    /// user who may write it); a change fails with `.permissionDenied`.
    case readOnly
    /// Read and change: the schema is migrated to this confvault's on opening.
    case readWrite
    /// Read as `.readOnly`; the first change opens the store for writing as `.readWrite` does. For
    /// a use case that reads, then records what it read (an export's audit entry), so that it still
    /// reads a store it cannot write.
    case readMostly
  }

  public static let databaseName = "confvault.sqlite"

  public let folder: String
  public let access: Access
  private let path: String
  private let configuration: Configuration
  private let logger: Logger
  /// Where reads go: the writer's pool (`.readWrite`), else one read-only connection.
  private let reader: any DatabaseReader
  /// Where changes go; opened on the first change when `.readMostly`, never when `.readOnly`.
  private let writer: Mutex<DatabasePool?>

  /// Opens the store in `folder`.
  ///
  /// - Parameters:
  ///   - access: `.readOnly` for a command that only reads; `create` needs `.readWrite`.
  ///   - create: make the folder and the database if they do not exist (only creating an app does).
  /// - Throws: `.inputUnreadable` with the hint `.createStore` when there is no store and `create` is
  ///   false; `.operationFailed` with the hint `.upgrade` when a newer confvault migrated the store;
  ///   `.permissionDenied` when the store must be written (`.readWrite`) and cannot be.
  public init(
    folder: String, access: Access = .readWrite, create: Bool = false, lockTimeout: TimeInterval = 30,
    logger: Logger
  ) throws {
    precondition(!create || access == .readWrite, "only a store opened read-write is created")
    SQLiteLibrary.prepare()
    self.folder = folder
    self.access = access
    self.logger = logger
    let path = folder + "/" + SQLiteStore.databaseName
    self.path = path
    var configuration = Configuration()
    configuration.busyMode = .timeout(lockTimeout)
    configuration.prepareDatabase { db in
      if !db.configuration.readonly { try SQLiteStore.prepareWriter(db) }
    }
    self.configuration = configuration
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
      try StoreFailure.mapping(folder) { try SQLiteStore.makeDatabase(path, configuration) }
    }
    // The schema is checked on a read-only connection first: a writer's opening writes (GRDB makes
    // sure the WAL file is not empty), and a store from a newer confvault must stay as it is.
    let readOnly = try SQLiteStore.openReadOnly(path, folder: folder, configuration: configuration)
    try StoreFailure.mapping(folder) {
      try readOnly.read { db in try Migrations.refuseUnknown(db, store: folder) }
    }
    switch access {
    case .readOnly, .readMostly:
      // A store an older confvault wrote is converted first, even to be read: its layout may not be
      // the one this confvault reads. A reader who may not write it is told so.
      if try StoreFailure.mapping(folder, { try readOnly.read { try !Migrations.migrator.hasCompletedMigrations($0) } })
      {
        do {
          _ = try SQLiteStore.openWriter(path, folder: folder, configuration: configuration, logger: logger)
        } catch let error as OperationError {
          throw OperationError(
            error.kind,
            "the store `\(folder)` was written by an older confvault and is converted to this one's layout by the first command that may write it; "
              + error.message)
        }
      }
      reader = readOnly
      writer = Mutex(nil)
    case .readWrite:
      let pool = try SQLiteStore.openWriter(path, folder: folder, configuration: configuration, logger: logger)
      reader = pool
      writer = Mutex(pool)
    }
  }

  /// Sets up a connection that may commit.
  ///
  /// `PRAGMA synchronous = FULL`, so that a committed version survives a power cut, not only a killed
  /// process. `SQLITE_FCNTL_PERSIST_WAL` keeps the `-wal` and `-shm` files when the last connection
  /// closes (a zero-length `-wal`, through `journal_size_limit`): SQLite opens a WAL database
  /// read-only only when those files exist or can be made, so with them a reader needs no write
  /// permission and no writable mount (see `openReadOnly`).
  private static func prepareWriter(_ db: Database) throws {
    try db.execute(sql: "PRAGMA synchronous = FULL")
    var persist: Int32 = 1
    let code = sqlite3_file_control(db.sqliteConnection, "main", SQLITE_FCNTL_PERSIST_WAL, &persist)
    guard code == SQLITE_OK else {
      throw DatabaseError(resultCode: ResultCode(rawValue: code), message: "cannot keep the WAL files")
    }
    // Bounds the WAL after a large import too; and with a limit set, SQLite truncates the kept WAL
    // to zero bytes on closing instead of leaving checkpointed frames for every reader to scan.
    try db.execute(sql: "PRAGMA journal_size_limit = \(64 << 20)")
  }

  /// Makes the database file of a new store.
  private static func makeDatabase(_ path: String, _ configuration: Configuration) throws {
    // 4 KiB pages, SQLite's default: most rows are a few dozen bytes (deltas, folder records, blob
    // rows), each of some twenty tables and indexes takes a page at least, and pages filled at random
    // (by digest) are partly empty. The replay fixture's store was 10% smaller than with 16 KiB pages;
    // a store of large files loses under a page per file to overflow pages. Stores made before keep
    // their page size. It is fixed when the first table is made, before WAL mode is on.
    let queue = try DatabaseQueue(path: path, configuration: configuration)  // closed on return
    try queue.writeWithoutTransaction { db in
      if try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sqlite_master") == 0 {
        try db.execute(sql: "PRAGMA page_size = 4096; VACUUM")
      }
    }
  }

  /// Opens one read-only connection: it migrates nothing and writes nothing to the database.
  ///
  /// SQLite reads a WAL database read-only only if its `-wal` and `-shm` files exist or it may make
  /// them. Every confvault that changed the store kept them (`prepareWriter`), so a store on a
  /// read-only mount, or readable but not writable for this user, reads as usual, seeing what other
  /// processes commit meanwhile. Without them (the store was last closed by an older confvault or
  /// another SQLite program), a store on a read-only file system is opened `immutable=1`: SQLite then
  /// reads the database file alone, without locking. That is sound there only: no `-wal` file, or an
  /// empty one, means every commit is in the database file, and a read-only mount lets no process of
  /// this one's view change it (a writer through another, writable mount of the same folder would
  /// first make a `-wal` file, which is looked for here). On a writable file system another process
  /// may be writing, and an immutable read could meet a page half rewritten by a checkpoint, so a
  /// user who cannot make the files gets an error saying so instead.
  private static func openReadOnly(_ path: String, folder: String, configuration: Configuration) throws
    -> DatabaseQueue
  {
    var configuration = configuration
    configuration.readonly = true
    let walFiles = WALFiles(path)
    if !walFiles.complete, walFiles.walIsEmpty, isOnReadOnlyFileSystem(folder),
      sqlite3_compileoption_used("USE_URI") == 1
    {
      let escaped = path.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? path
      return try StoreFailure.mapping(folder) {
        try DatabaseQueue(path: "file:" + escaped + "?immutable=1", configuration: configuration)
      }
    }
    do {
      let queue = try DatabaseQueue(path: path, configuration: configuration)
      // Opening reads nothing yet; the first read is where SQLite needs the WAL files.
      _ = try queue.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sqlite_master") }
      return queue
    } catch let error as DatabaseError where !walFiles.complete && faccessat(AT_FDCWD, folder, W_OK, AT_EACCESS) != 0 {
      throw OperationError(
        .permissionDenied,
        "cannot read the store `\(folder)`: its `\(databaseName)-wal` and `\(databaseName)-shm` files are missing "
          + "and this user may not make them (\(error.message ?? "\(error.resultCode)")); confvault run once by "
          + "a user who may write the store's folder makes them, and keeps them from then on",
        cause: error)
    } catch let error as DatabaseError {
      throw StoreFailure.translate(error, folder)
    }
  }

  /// Opens the pool changes are made through, and migrates the schema to this confvault's.
  private static func openWriter(_ path: String, folder: String, configuration: Configuration, logger: Logger)
    throws -> DatabasePool
  {
    try refuseUnwritable(folder, path: path)
    let pool = try StoreFailure.mapping(folder) { try DatabasePool(path: path, configuration: configuration) }
    try StoreFailure.mapping(folder) {
      // GRDB's pool sets up WAL mode on its writer after `prepareDatabase`, and with it
      // `synchronous = NORMAL`; the migrations commit FULL (see `prepareWriter`), and later writes
      // set their own level (`writing`).
      try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
      let migrator = Migrations.migrator
      if try !pool.read({ try migrator.hasCompletedMigrations($0) }) {
        do {
          try migrator.migrate(pool)
          logger.info("store schema migrated", metadata: ["store": "\(folder)"])
        } catch {
          // Another process may have migrated it between this one's look and its turn for the lock.
          guard try pool.read({ try migrator.hasCompletedMigrations($0) }) else { throw error }
          logger.debug("store schema migrated by another process", metadata: ["store": "\(folder)"])
        }
      }
    }
    return pool
  }

  /// Refuses to open for writing a store this process may not write, before SQLite tries: its
  /// "attempt to write a readonly database" would come from the middle of opening, and say less.
  private static func refuseUnwritable(_ folder: String, path: String) throws {
    // The folder too: SQLite makes the `-wal` and `-shm` files there, and imports their staging folder.
    for target in [folder, path, path + "-wal", path + "-shm"] {
      guard faccessat(AT_FDCWD, target, W_OK, AT_EACCESS) != 0 else { continue }
      switch errno {
      case EROFS:
        throw OperationError(
          .permissionDenied,
          "the store `\(folder)` is read-only: its file system is mounted read-only; nothing was changed")
      case EACCES, EPERM:
        throw OperationError(
          .permissionDenied,
          "the store `\(folder)` is not writable by this user (uid \(geteuid())): no write permission on "
            + "`\(target)`; nothing was changed")
      default:
        continue  // a missing `-wal` is made by SQLite; anything else SQLite reports itself
      }
    }
  }

  private static func isOnReadOnlyFileSystem(_ folder: String) -> Bool {
    var info = statvfs()
    return statvfs(folder, &info) == 0 && info.f_flag & UInt(ST_RDONLY) != 0
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
      // Rows read where the cursor stands: a copied row finds a column by lower-casing every
      // column's name, a tenth of a server's `GET versions`.
      return try Array(Row.fetchCursor(db, sql: sql, arguments: arguments).map { try Queries.version($0, app: app) })
    }
  }

  public func version(app: String, number: Int) async throws -> Version {
    try await reading { db in try Queries.version(db, app: app, number: number) }
  }

  public func files(app: String, number: Int) async throws -> [ManifestFile] {
    try await reading { db in
      let root = try Queries.treeRoot(db, app: app, number: number)
      return try Queries.flatten(Queries.folders(db), node: root).sorted { EntryPath.byteOrder($0.path, $1.path) }
    }
  }

  public var storesDeltas: Bool { true }

  public func files(app: String, number: Int, inFolders folders: Set<String>) async throws -> [ManifestFile] {
    try await reading { db in
      let root = try Queries.treeRoot(db, app: app, number: number)
      let reader = Queries.folders(db)
      var files: [ManifestFile] = []
      for folder in folders {
        var node: Data? = root
        for name in folder.split(separator: "/") where node != nil {
          let entries = try reader.entries(node!)
          node = nil
          for case .folder(let found, let child) in entries where found == name { node = child }
        }
        guard let node else { continue }
        let prefix = folder.isEmpty ? "" : folder + "/"
        for case .file(let name, let mode, let size, let blob) in try reader.entries(node) {
          files.append(ManifestFile(path: prefix + name, size: size, mode: mode, sha256: blob))
        }
      }
      return files
    }
  }

  public func changedFiles(app: String, from: Int?, to: Int) async throws -> [FileChange] {
    try await reading { db in
      let new = try Queries.treeRoot(db, app: app, number: to)
      let old = try from.map { try Queries.treeRoot(db, app: app, number: $0) }
      var changes: [FileChange] = []
      if from == nil {
        // A first version's changes are its files, each added: the list is made at its size, not
        // grown by doubling (a list of 100,000 was 13.6 MB, and 6.8 MB more while it last grew).
        // The stored count is a hint only: a damaged one reserves no more than a million, and one
        // that cannot be read reserves nothing.
        let count = try? Int.fetchOne(
          db, sql: "SELECT v.file_count FROM version v JOIN app a ON a.id = v.app_id WHERE a.name = ? AND v.number = ?",
          arguments: [app, to])
        changes.reserveCapacity(min(max(count ?? 0, 0), 1 << 20))
      }
      try Queries.diff(Queries.folders(db), old: old, new: new, prefix: "", into: &changes)
      // The walk goes folder by folder, so `a/b` comes before `a.txt`, which byte order puts first;
      // a tree without such neighbours comes out in order already and is not sorted again. The sort
      // makes no copy of the list (100,000 changes: 10 MB), only its scratch of half that.
      if !zip(changes, changes.dropFirst()).allSatisfy({ EntryPath.byteOrder($0.path, $1.path) }) {
        changes.sort { EntryPath.byteOrder($0.path, $1.path) }
      }
      return changes
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
      return try Array(Row.fetchCursor(db, sql: sql, arguments: arguments).map(Queries.auditEntry)).reversed()
    }
  }

  // MARK: Content

  public func readBlob(_ digest: SHA256Hex, _ body: (UnsafeRawBufferPointer) throws -> Void) async throws {
    let key = digest.bytes
    // One read for the common one-chunk blob (two for a delta, with its base); a larger blob reads one
    // more chunk at a time, so memory stays at a chunk. A blob never changes once stored, so the chunks
    // need no common snapshot.
    let first = try await reading {
      db -> (chunks: Int, first: Int64, chunk: BlobCodec.Chunk?, base: BlobCodec.Chunk?)? in
      guard let row = try BlobWriter.firstChunk(db, key) else { return nil }
      let base = try row.base.map { base in
        guard let whole = try BlobWriter.chunk(db, row: base) else {
          throw OperationError(.internal, "blob \(digest) is a delta whose base is missing", hint: .runCheck)
        }
        return whole
      }
      return (row.chunks, row.first, row.chunk, base)
    }
    guard let first else {
      throw OperationError(.internal, "blob \(digest) is missing from the store", hint: .runCheck)
    }
    var buffer = Data()
    let base = try first.base.map { try SQLiteStore.decodedBase($0, of: digest) }
    for seq in 0..<first.chunks {
      let stored =
        seq == 0
        ? first.chunk
        : try await reading { db in
          try Row.fetchOne(
            db.cachedStatement(sql: "SELECT zstd, data FROM blob_chunk WHERE id = ?"),
            arguments: [BlobWriter.end(first.first, Int64(seq))]
          ).map { BlobCodec.Chunk(data: $0["data"], compressed: $0["zstd"]) }
        }
      guard let stored else {
        throw OperationError(.internal, "blob \(digest) is missing its chunk \(seq)", hint: .runCheck)
      }
      try BlobCodec.decode(stored.data, compressed: stored.compressed, base: base, into: &buffer)
      if base != nil { try SQLiteStore.checkDelta(digest, decoded: buffer) }
      try buffer.withUnsafeBytes { try body($0) }
    }
  }

  public func readBlobs(_ digests: [SHA256Hex]) async throws -> [Data?] {
    // One read of the store for the stored chunks and their deltas' bases; decompressing happens
    // outside it. A blob of several chunks is left to readBlob (nil), and so is one that would take
    // this read past `BlobCodec.bytesReadTogether`, counting what it decodes to and its base if that is not
    // held already: many small deltas against large bases, or a damaged size, cannot make a batch
    // hold more.
    let (stored, bases) = try await reading {
      db -> ([(chunk: BlobCodec.Chunk, base: Int64?)?], [Int64: BlobCodec.Chunk]) in
      var bases: [Int64: BlobCodec.Chunk] = [:]
      var held = 0
      let stored = try digests.map { digest -> (chunk: BlobCodec.Chunk, base: Int64?)? in
        guard let row = try BlobWriter.firstChunk(db, digest.bytes) else {
          throw OperationError(.internal, "blob \(digest) is missing from the store", hint: .runCheck)
        }
        guard row.chunks == 1, let chunk = row.chunk, let size = chunk.decodedSize else { return nil }
        var cost = chunk.data.count + size
        var newBase: BlobCodec.Chunk?
        if let base = row.base, bases[base] == nil {
          guard let whole = try BlobWriter.chunk(db, row: base) else {
            throw OperationError(.internal, "blob \(digest) is a delta whose base is missing", hint: .runCheck)
          }
          guard let baseSize = whole.decodedSize else { return nil }
          cost += whole.data.count + baseSize
          newBase = whole
        }
        guard held + cost <= BlobCodec.bytesReadTogether else { return nil }
        held += cost
        if let base = row.base, let newBase { bases[base] = newBase }
        return (chunk, row.base)
      }
      return (stored, bases)
    }
    var decodedBases: [Int64: Data] = [:]
    for (digest, blob) in zip(digests, stored) {
      guard let row = blob?.base, decodedBases[row] == nil, let base = bases[row] else { continue }
      decodedBases[row] = try SQLiteStore.decodedBase(base, of: digest)
    }
    return try zip(digests, stored).map { digest, blob in
      guard let blob else { return nil }
      var content = Data()
      try BlobCodec.decode(
        blob.chunk.data, compressed: blob.chunk.compressed, base: blob.base.flatMap { decodedBases[$0] },
        into: &content)
      if blob.base != nil { try SQLiteStore.checkDelta(digest, decoded: content) }
      return content
    }
  }

  /// The bytes of `delta`'s base, read as a chunk stored whole.
  private static func decodedBase(_ base: BlobCodec.Chunk, of delta: SHA256Hex) throws -> Data {
    do {
      return try base.decoded()
    } catch {
      throw OperationError(
        .internal, "blob \(delta) is a delta whose base is damaged (not a chunk stored whole)", hint: .runCheck)
    }
  }

  /// A delta names its base by a chunk's row, which only `check` proves is a whole blob's: what it
  /// decodes to is hashed, so a damaged store gives an error, never another file's bytes.
  private static func checkDelta(_ digest: SHA256Hex, decoded: Data) throws {
    guard SHA256Hex.of(decoded) == digest else {
      throw OperationError(
        .internal, "blob \(digest) is a delta that does not decode to its content: its base is damaged",
        hint: .runCheck)
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

  public func missingBlobs(inTree tree: VersionTree) async throws -> [SHA256Hex] {
    try await reading { db in
      let statement = try db.cachedStatement(sql: "SELECT 1 FROM blob WHERE sha256 = ?")
      // The files of a new folder are its own entries: no path of the tree is looked at. Their
      // contents in order, each once, then each looked up once; the list is kept in place throughout.
      // Counted first: a list grown by doubling held its old and its new buffer at once, 6 MiB of a
      // first import of 100,000 files.
      let newFolders = try Queries.newFolders(db, tree.folders)
      var missing: [SHA256Hex] = []
      missing.reserveCapacity(newFolders.reduce(0) { $0 + $1.entryCount })
      for folder in newFolders { missing.append(contentsOf: folder.fileBlobs) }
      missing.sort()
      var kept = 0
      for index in missing.indices where index == 0 || missing[index] != missing[index - 1] {
        guard try Bool.fetchOne(statement, arguments: [missing[index].bytes]) != true else { continue }
        missing[kept] = missing[index]
        kept += 1
      }
      missing.removeSubrange(kept...)
      return missing
    }
  }

  /// Stores blobs in transactions of about this many bytes, so the write lock is never held for long.
  private static let bytesPerTransaction: Int64 = 32 << 20
  private static let blobsPerTransaction = 4096

  public func storeBlobs(_ blobs: [BlobFile]) async throws {
    var batch: [BlobFile] = []
    var batchBytes: Int64 = 0
    for blob in blobs {
      batch.append(blob)
      batchBytes += blob.size
      // Bounded by count too: a batch's small blobs are held compressed in memory until it commits.
      if batchBytes >= SQLiteStore.bytesPerTransaction || batch.count >= SQLiteStore.blobsPerTransaction {
        try await storeBatch(batch)
        batch.removeAll()
        batchBytes = 0
      }
    }
    if !batch.isEmpty { try await storeBatch(batch) }
  }

  /// Stores a batch in one transaction. Blobs of one chunk are read, checked and compressed first, on
  /// every core and outside the transaction, each also as a delta against the blob it resembles; larger
  /// ones stream through it a chunk at a time.
  private func storeBatch(_ blobs: [BlobFile]) async throws {
    let storedAt = Queries.seconds(Date())
    let bases = try await reading { db in try BlobWriter.deltaBases(db, for: blobs) }
    let encoded = try await offload { try BlobWriter.encodeSmall(blobs, bases: bases) }
    // Not synced on its own (a disk round trip per batch, one per one-file push): blobs are named
    // only by a version committed after them, synced, and syncing the WAL then makes every frame
    // before that commit durable too. A power cut before it loses blobs nothing names yet.
    try await writing(synced: false) { db in
      let writer = try BlobWriter(db: db, storedAt: storedAt)
      for (blob, chunk) in zip(blobs, encoded) {
        if let chunk { try writer.store(blob, encoded: chunk) } else { try writer.store(blob) }
      }
    }
  }

  // MARK: Changing

  @discardableResult
  public func apply(_ change: StoreChange) async throws -> Version? {
    try await writing { db in try ChangeWriter(db: db, change: change).apply() }
  }

  // MARK: Upkeep

  public func check() async throws -> CheckReport {
    // Blobs and folder records are checked through a connection of their own while the versions
    // are checked on this one. Each half reads one snapshot and compares nothing with the other's;
    // only the counts in the report may come from different moments. They share the folders they
    // decode, as a digest names the same entries in every snapshot of a sound store: a folder one
    // half's snapshot lacks but the other half decoded goes unreported by the first, which takes a
    // damaged store changed while it is checked (every record is still decoded from its own row
    // and compared with its digest by the content half).
    let (path, folder, configuration) = (path, folder, configuration)
    let folders = FolderCache()
    async let content = StoreFailure.mapping(folder) {
      let records = try SQLiteStore.openReadOnly(path, folder: folder, configuration: configuration)
      return try await records.read { db in try StoreCheck(db: db, decodedFolders: folders).content() }
    }
    let rest = try await reading { db in try StoreCheck(db: db, decodedFolders: folders).rest() }
    let (problems, blobs) = try await content
    // Let go of on another thread: freeing the decoded folders (up to 100,000 entries) took about
    // 4 ms at the end of the replay fixture's check, which the report need not wait for.
    DispatchQueue.global(qos: .utility).async { withExtendedLifetime(folders) {} }
    return CheckReport(
      problems: problems + rest.problems, unreferencedBlobs: rest.unreferencedBlobs, versions: rest.versions,
      blobs: blobs, folders: rest.folders, folderBytes: rest.folderBytes)
  }

  public func collectGarbage(grace: TimeInterval) async throws -> Int {
    let cutoff = Queries.seconds(Date()) - Int64(grace)
    return try await writing { db in
      // Chunks claimed by two blobs (a damaged store) could not be removed for one without the other.
      let ranges = try BlobWriter.chunkRanges(db)
      guard ranges.overlapping.isEmpty else {
        throw OperationError(
          .internal,
          "\(ranges.overlapping.count) blobs' stored chunks overlap another blob's, so removing one could damage another; nothing was removed",
          hint: .runCheck)
      }
      let gone = try Row.fetchAll(
        db,
        sql: """
          SELECT sha256, first_chunk, chunk_count FROM blob
          WHERE sha256 IN (\(Queries.unreferencedBlobs(storedBefore: cutoff)))
          """)
      for blob in gone {
        try db.cachedStatement(sql: "DELETE FROM blob_chunk WHERE id >= ? AND id < ?").execute(arguments: [
          blob["first_chunk"], BlobWriter.end(blob["first_chunk"], blob["chunk_count"]),
        ])
        try db.cachedStatement(sql: "DELETE FROM blob WHERE sha256 = ?").execute(arguments: [blob["sha256"]])
      }
      // Chunks left by a damaged store belong to no blob.
      for id in ranges.strays {
        try db.cachedStatement(sql: "DELETE FROM blob_chunk WHERE id = ?").execute(arguments: [id])
      }
      return gone.count
    }
  }

  /// `PRAGMA synchronous` on the connection changes are committed with, as the last write left it
  /// (2 is FULL, 1 NORMAL), for tests.
  func synchronousSettingOfWriter() async throws -> Int {
    try await StoreFailure.mapping(folder) {
      try await self.writerPool().writeWithoutTransaction { db in
        try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1
      }
    }
  }

  func reading<T: Sendable>(_ body: @Sendable @escaping (Database) throws -> T) async throws -> T {
    try await StoreFailure.mapping(folder) { try await self.reader.read(body) }
  }

  /// The pool changes go through, opened now if the store was opened `.readMostly`.
  private func writerPool() throws -> DatabasePool {
    try writer.withLock { writer in
      if let writer { return writer }
      guard access == .readMostly else {
        throw OperationError(.permissionDenied, "the store `\(folder)` was opened read-only; nothing was changed")
      }
      let pool = try SQLiteStore.openWriter(path, folder: folder, configuration: configuration, logger: logger)
      writer = pool
      return pool
    }
  }

  /// Runs `body` in one `BEGIN IMMEDIATE` transaction: committed whole, or rolled back.
  ///
  /// - Parameter synced: whether the commit is on the disk when this returns (`synchronous = FULL`),
  ///   as every change but stored blobs must be (see `storeBatch`). Each write sets it for itself, so
  ///   none inherits another's.
  func writing<T: Sendable>(synced: Bool = true, _ body: @Sendable @escaping (Database) throws -> T) async throws
    -> T
  {
    let pool = try writerPool()
    return try await StoreFailure.mapping(folder) {
      try await pool.writeWithoutTransaction { db in
        try db.execute(sql: synced ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL")
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

/// Which of a WAL database's companion files exist.
private struct WALFiles {
  /// Both the `-wal` and the `-shm` file exist.
  var complete: Bool
  /// The `-wal` file is missing or empty: every commit is in the database file.
  var walIsEmpty: Bool

  init(_ path: String) {
    var wal = stat()
    var shm = stat()
    let hasWAL = stat(path + "-wal", &wal) == 0
    complete = hasWAL && stat(path + "-shm", &shm) == 0
    walIsEmpty = !hasWAL || wal.st_size == 0
  }
}

/// Stores files as content-addressed blobs, chunk by chunk, inside one write transaction.
final class BlobWriter {
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

  /// A blob of one chunk as it may be stored: alone, and as a delta against a base when that pays.
  struct Encoded: Sendable {
    var alone: BlobCodec.Chunk
    var delta: Delta?
  }

  /// A delta, and the base it was made against: the one chunk of a blob stored whole, found through
  /// `via` (that blob, or a delta against it), or `via` itself, a blob of the same batch stored whole
  /// before it.
  struct Delta: Sendable {
    var via: SHA256Hex
    /// The stored base, as it was read: its chunk's row and bytes; nil for a base of the batch.
    var stored: (row: Int64, chunk: BlobCodec.Chunk)?
    var data: Data
  }

  /// A blob stored whole in one chunk, which new content may be a delta against: its chunk's row and bytes.
  struct DeltaBase: Sendable {
    var row: Int64
    var chunk: BlobCodec.Chunk
  }

  /// The bases a batch holds at most, stored ones compressed and its own whole: beyond, blobs are
  /// stored alone, so finding deltas adds a bounded amount to a push's memory.
  private static let baseBytesPerBatch = 8 << 20

  /// The first chunk of a stored blob, with its chunk count, the row of its first chunk (the others
  /// follow it), and, when it is a delta, its base: the row of the base's one chunk.
  static func firstChunk(_ db: Database, _ key: Data) throws -> (
    chunks: Int, first: Int64, chunk: BlobCodec.Chunk?, base: Int64?
  )? {
    try Row.fetchOne(
      db.cachedStatement(
        sql: """
          SELECT b.chunk_count, b.first_chunk, b.base, c.zstd, c.data FROM blob b
          LEFT JOIN blob_chunk c ON c.id = b.first_chunk AND b.chunk_count > 0 WHERE b.sha256 = ?
          """), arguments: [key]
    ).map { row in
      let data: Data? = row["data"]
      return (
        row["chunk_count"], row["first_chunk"], data.map { BlobCodec.Chunk(data: $0, compressed: row["zstd"]) },
        row["base"]
      )
    }
  }

  /// The stored chunk of `row`, as a delta's base is read; nil when there is none.
  static func chunk(_ db: Database, row: Int64) throws -> BlobCodec.Chunk? {
    try Row.fetchOne(db.cachedStatement(sql: "SELECT zstd, data FROM blob_chunk WHERE id = ?"), arguments: [row])
      .map { BlobCodec.Chunk(data: $0["data"], compressed: $0["zstd"]) }
  }

  /// How the blobs' chunk rows lie: the rows no blob's range covers and no delta names as its base,
  /// and the blobs whose range overlaps another's (both only in a damaged store). One pass over each
  /// table, in row order.
  static func chunkRanges(_ db: Database) throws -> (strays: [Int64], overlapping: [Data]) {
    let ranges = try Row.fetchCursor(
      db, sql: "SELECT sha256, first_chunk, chunk_count FROM blob WHERE chunk_count > 0 ORDER BY first_chunk")
    let ids = try Int64.fetchCursor(db, sql: "SELECT id FROM blob_chunk ORDER BY id")
    // A chunk a delta names as its base is no stray even when no blob's range covers it (a damaged
    // store): removing it would lose the delta too. Check reports such a delta.
    let bases = Set(try Int64.fetchAll(db, sql: "SELECT DISTINCT base FROM blob WHERE base IS NOT NULL"))
    var strays: [Int64] = []
    var overlapping: [Data] = []
    var coveredUpTo: Int64 = .min
    var nextID = try ids.next()
    while let range = try ranges.next() {
      let first: Int64 = range["first_chunk"]
      let end = end(first, range["chunk_count"])
      if first < coveredUpTo { overlapping.append(range["sha256"]) }
      while let id = nextID, id < end {
        if id < first && id >= coveredUpTo && !bases.contains(id) { strays.append(id) }
        nextID = try ids.next()
      }
      coveredUpTo = max(coveredUpTo, end)
    }
    while let id = nextID {
      if !bases.contains(id) { strays.append(id) }
      nextID = try ids.next()
    }
    return (strays, overlapping)
  }

  /// The row after a blob's last chunk; a damaged count that would pass the largest row stops there.
  static func end(_ first: Int64, _ count: Int64) -> Int64 {
    let (end, overflow) = first.addingReportingOverflow(max(count, 0))
    return overflow ? .max : end
  }

  /// The row the next blob's first chunk takes: its chunks follow it, one row each.
  private func nextChunkRow() throws -> Int64 {
    try Int64.fetchOne(db.cachedStatement(sql: "SELECT COALESCE(MAX(id), 0) + 1 FROM blob_chunk")) ?? 1
  }

  /// For each blob's `similar`, the blob to store it as a delta against: the similar blob, or its base
  /// when it is a delta itself, so no delta is more than one step from a whole blob.
  static func deltaBases(_ db: Database, for blobs: [BlobFile]) throws -> [SHA256Hex: DeltaBase] {
    var bases: [SHA256Hex: DeltaBase] = [:]
    var bytes = 0
    for blob in blobs where blob.size <= BlobCodec.chunkSize {
      guard let similar = blob.similar, bases[similar] == nil, bytes < baseBytesPerBatch,
        let found = try firstChunk(db, similar.bytes), found.chunks == 1
      else { continue }
      var row = found.first
      var chunk = found.chunk
      if let base = found.base { (row, chunk) = (base, try self.chunk(db, row: base)) }
      guard let chunk else { continue }
      bases[similar] = DeltaBase(row: row, chunk: chunk)
      bytes += chunk.data.count
    }
    return bases
  }

  /// The row of the base `delta` was made against, when that is still what `delta.via` leads to:
  /// `via`'s one chunk when it is stored whole, or its base when it is a delta; a stored base must
  /// also still hold the bytes read (a `gc` and a later write may have put other bytes in its row).
  private func baseRow(of delta: Delta) throws -> Int64? {
    guard
      let found = try Row.fetchOne(
        db.cachedStatement(sql: "SELECT base, chunk_count, first_chunk FROM blob WHERE sha256 = ?"),
        arguments: [delta.via.bytes])
    else { return nil }
    let base: Int64? = found["base"]
    let whole: Int64? = found["chunk_count"] == 1 ? found["first_chunk"] : nil
    guard let stored = delta.stored else { return base == nil ? whole : nil }
    guard (base ?? whole) == stored.row,
      try Bool.fetchOne(
        db.cachedStatement(sql: "SELECT 1 FROM blob_chunk WHERE id = ? AND zstd = ? AND data = ?"),
        arguments: [stored.row, stored.chunk.compressed, stored.chunk.data]) == true
    else { return nil }
    return stored.row
  }

  /// Each blob of at most one chunk (nil for larger ones), read, checked against its digest and
  /// compressed, alone and against its base, on up to four cores. A base is a stored blob (`bases`) or
  /// a blob of this batch, stored whole before it: those are encoded first, and their bytes kept.
  static func encodeSmall(_ blobs: [BlobFile], bases: [SHA256Hex: DeltaBase]) throws -> [Encoded?] {
    let inBatch = Set(blobs.map(\.sha256))
    let leaders = Set(blobs.compactMap { $0.similar.flatMap { bases[$0] == nil && inBatch.contains($0) ? $0 : nil } })
    let small = blobs.indices.filter { blobs[$0].size <= BlobCodec.chunkSize }
    let followers = small.filter { blobs[$0].similar.map(leaders.contains) == true }
    let results = Mutex([Result<Encoded?, any Error>](repeating: .success(nil), count: blobs.count))
    let leaderBytes = Mutex((total: 0, bytes: [SHA256Hex: Data]()))
    encodeInParallel(blobs, small.filter { blobs[$0].similar.map(leaders.contains) != true }) {
      index, content, compressor in
      var encoded = Encoded(alone: compressor.encode(content))
      if let similar = blobs[index].similar, let base = bases[similar],
        let baseBytes = try? base.chunk.decoded(),
        let delta = compressor.delta(content, base: baseBytes, alone: encoded.alone)
      {
        encoded.delta = Delta(via: similar, stored: (base.row, base.chunk), data: delta)
      }
      if leaders.contains(blobs[index].sha256) && encoded.delta == nil {
        let bytes = Data(content)
        leaderBytes.withLock { held in
          guard held.total + bytes.count <= baseBytesPerBatch else { return }
          held.total += bytes.count
          held.bytes[blobs[index].sha256] = bytes
        }
      }
      return encoded
    } results: { index, result in
      results.withLock { $0[index] = result }
    }
    let whole = leaderBytes.withLock { $0.bytes }
    encodeInParallel(blobs, followers) { index, content, compressor in
      var encoded = Encoded(alone: compressor.encode(content))
      if let similar = blobs[index].similar, let baseBytes = whole[similar],
        let delta = compressor.delta(content, base: baseBytes, alone: encoded.alone)
      {
        encoded.delta = Delta(via: similar, stored: nil, data: delta)
      }
      return encoded
    } results: { index, result in
      results.withLock { $0[index] = result }
    }
    return try results.withLock { $0 }.map { try $0.get() }
  }

  /// Reads each blob of `indices` whole, checked against its digest, on up to four cores, and hands
  /// its bytes to `encode`.
  private static func encodeInParallel(
    _ blobs: [BlobFile], _ indices: [Int],
    _ encode: @Sendable (Int, UnsafeRawBufferPointer, BlobCodec.Compressor) throws -> Encoded,
    results: @Sendable (Int, Result<Encoded?, any Error>) -> Void
  ) {
    let workers = min(max(ProcessInfo.processInfo.activeProcessorCount, 1), 4, max(indices.count, 1))
    DispatchQueue.concurrentPerform(iterations: workers) { worker in
      let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: BlobCodec.chunkSize, alignment: 16)
      let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 << 10, alignment: 16)
      defer {
        buffer.deallocate()
        readBuffer.deallocate()
      }
      // Without a context (out of memory), the blobs are left to the transaction's one-by-one path.
      guard let compressor = try? BlobCodec.Compressor() else { return }
      for index in stride(from: worker, to: indices.count, by: workers).map({ indices[$0] }) {
        results(
          index,
          Result {
            var filled = 0
            try blobs[index].stream(buffer: readBuffer) { chunk in
              UnsafeMutableRawBufferPointer(rebasing: buffer[filled..<filled + chunk.count]).copyMemory(from: chunk)
              filled += chunk.count
            }
            return try encode(index, UnsafeRawBufferPointer(rebasing: buffer[0..<filled]), compressor)
          })
      }
    }
  }

  /// Stores `blob`, encoded already, unless it is stored already: as its delta while its base is
  /// still stored (a `gc` may have removed it meanwhile), alone otherwise.
  func store(_ blob: BlobFile, encoded: Encoded) throws {
    let key = blob.sha256.bytes
    guard try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM blob WHERE sha256 = ?"), arguments: [key]) != true
    else { return }
    var chunk = encoded.alone
    var base: Int64?
    if let delta = encoded.delta, let row = try baseRow(of: delta) {
      chunk = BlobCodec.Chunk(data: delta.data, compressed: true)
      base = row
    }
    let row = try nextChunkRow()
    try db.cachedStatement(sql: "INSERT INTO blob_chunk (id, zstd, data) VALUES (?, ?, ?)")
      .execute(arguments: [row, chunk.compressed, chunk.data])
    try db.cachedStatement(
      sql: """
        INSERT INTO blob (sha256, size, chunk_count, first_chunk, stored_at, base) VALUES (?, ?, 1, ?, ?, ?)
        """
    ).execute(arguments: [key, blob.size, row, storedAt, base])
  }

  /// Stores `blob` unless it is stored already; its content must still have its digest and size.
  func store(_ blob: BlobFile) throws {
    let key = blob.sha256.bytes
    guard try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM blob WHERE sha256 = ?"), arguments: [key]) != true
    else { return }
    let first = try nextChunkRow()
    var sequence = 0
    var filled = 0
    func flush() throws {
      let encoded = compressor.encode(UnsafeRawBufferPointer(rebasing: buffer[0..<filled]))
      try db.cachedStatement(sql: "INSERT INTO blob_chunk (id, zstd, data) VALUES (?, ?, ?)")
        .execute(arguments: [first + Int64(sequence), encoded.compressed, encoded.data])
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
      sql: "INSERT INTO blob (sha256, size, chunk_count, first_chunk, stored_at) VALUES (?, ?, ?, ?, ?)"
    ).execute(arguments: [key, blob.size, sequence, first, storedAt])
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

  static func translate(_ error: DatabaseError, _ folder: String) -> OperationError {
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
