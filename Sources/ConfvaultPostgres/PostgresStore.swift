import ConfvaultCore
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// The shared store: a PostgreSQL database that several servers and commands use at once.
///
/// The store owns a `PostgresClient` pool and runs it in a task of its own from `init` until `close()`,
/// so that a short-lived command needs no service group: it opens the store, uses it, and closes it.
/// The schema is checked (and, for a store opened to write, migrated) once, before the first
/// operation. Each change is one transaction that locks its app's row first (see `ChangeWriter`); a
/// read of several statements is one REPEATABLE READ snapshot. Serialisation failures and deadlocks
/// are retried a few times; a server that cannot be reached within `connectTimeout` is a
/// `.temporaryFailure`.
public final class PostgresStore: VersionStore {
  public let location: DatabaseLocation
  /// Whether changes are refused (`.permissionDenied`) and nothing is migrated.
  public let readOnly: Bool
  private let create: Bool
  private let connectTimeout: Duration
  private let logger: Logger
  private let client: PostgresClient
  private let runner: Task<Void, Never>
  /// The schema check (and migration), run once; forgotten when it fails, so a later call tries again.
  private let preparation = Mutex<Task<Void, any Error>?>(nil)
  /// The latest connection of our own tried (`diagnoseShared`), and when.
  private let diagnosis = Mutex<(task: Task<Void, any Error>, started: ContinuousClock.Instant)?>(nil)
  /// How many times a transaction that meets a serialisation failure or a deadlock is tried in all.
  static let attempts = 5

  /// Opens the store at `location`; nothing is sent to the server before the first operation.
  ///
  /// - Parameters:
  ///   - readOnly: for a command that only reads: a change is refused (a database an older confvault
  ///     wrote is still migrated first, since this confvault reads only its own layout).
  ///   - create: make the schema in an empty database (only creating an app, a user or a token does).
  ///   - lockTimeout: how long a change waits for another server's lock on its app before `.temporaryFailure`.
  ///   - connectTimeout: how long an operation waits for a connection before `.temporaryFailure`.
  /// - Throws: `.usage` or `.inputUnreadable` when the TLS settings cannot be used.
  public init(
    location: DatabaseLocation, readOnly: Bool = false, create: Bool = false, lockTimeout: TimeInterval = 30,
    connectTimeout: Duration = .seconds(10), logger: Logger
  ) throws {
    precondition(!create || !readOnly, "only a store opened to write is created")
    self.location = location
    self.readOnly = readOnly
    self.create = create
    self.connectTimeout = connectTimeout
    self.logger = logger
    var background = logger
    // The pool logs each failed connection attempt; the error the operation reports says it once.
    background.logLevel = max(logger.logLevel, .error)
    let client = PostgresClient(
      configuration: try location.clientConfiguration(lockTimeout: lockTimeout), backgroundLogger: background)
    self.client = client
    runner = Task.detached { await client.run() }
  }

  deinit { runner.cancel() }

  /// Closes the pool's connections (politely, so the server logs no lost client) and stops its task.
  public func close() async {
    runner.cancel()
    await runner.value
  }

  public var stagingFolder: String {
    let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
    return base + "/confvault-staging-\(getuid())"
  }

  // MARK: Reading

  public func apps() async throws -> [AppInfo] {
    try await reading { session in
      var apps: [AppInfo] = []
      for row in try await session.rows("SELECT id, name, created_at FROM app ORDER BY name") {
        let (id, name, created) = try row.decode((Int64, String, Int64).self)
        apps.append(try await Queries.app(session, id: id, name: name, createdAt: created))
      }
      return apps
    }
  }

  public func app(_ name: String) async throws -> AppInfo {
    try await reading { session in try await Queries.app(session, name) }
  }

  public func versions(app: String, environment: String?, before: Int?, limit: Int) async throws -> [Version] {
    try await reading { session in
      let appID = try await Queries.appID(session, app)
      return try await session.rows(
        """
        SELECT \(unescaped: Queries.versionColumns) FROM version
        WHERE app_id = \(appID) AND (\(environment)::text IS NULL OR environment = \(environment))
          AND number < \(before ?? Int.max) ORDER BY number DESC LIMIT \(limit)
        """
      ).map { try Queries.version($0, app: app) }
    }
  }

  public func version(app: String, number: Int) async throws -> Version {
    try await reading { session in try await Queries.version(session, app: app, number: number) }
  }

  public func files(app: String, number: Int) async throws -> [ManifestFile] {
    try await reading { session in
      let root = try await Queries.treeRoot(session, app: app, number: number)
      return try await Queries.flatten(session, root: root).sorted { EntryPath.byteOrder($0.path, $1.path) }
    }
  }

  public func changedFiles(app: String, from: Int?, to: Int) async throws -> [FileChange] {
    try await reading { session in
      let new = try await Queries.treeRoot(session, app: app, number: to)
      var old: Data?
      if let from { old = try await Queries.treeRoot(session, app: app, number: from) }
      return try await Queries.diff(session, old: old, new: new)
    }
  }

  public func audit(app: String?, limit: Int) async throws -> [AuditEntry] {
    try await reading { session in
      try await session.rows(
        """
        SELECT \(unescaped: Queries.auditColumns) FROM audit
        WHERE \(app)::text IS NULL OR app = \(app) ORDER BY id DESC LIMIT \(limit)
        """
      ).map(Queries.auditEntry).reversed()
    }
  }

  // MARK: Content

  public func readBlob(_ digest: SHA256Hex, _ body: (UnsafeRawBufferPointer) throws -> Void) async throws {
    let key = digest.bytes
    // One query for the common one-chunk blob; a larger blob reads one more chunk at a time, so memory
    // stays at a chunk. A blob never changes once stored, so the chunks need no common snapshot.
    let first = try await reading(snapshot: false) { session -> (chunks: Int, chunk: BlobCodec.Chunk?)? in
      guard
        let row = try await session.one(
          """
          SELECT b.chunk_count, c.zstd, c.data FROM blob b
          LEFT JOIN blob_chunk c ON c.blob = b.sha256 AND c.seq = 0 WHERE b.sha256 = \(key)
          """)
      else { return nil }
      let (chunks, compressed, data) = try row.decode((Int, Bool?, Data?).self)
      return (chunks, data.map { BlobCodec.Chunk(data: $0, compressed: compressed ?? false) })
    }
    guard let first else {
      throw OperationError(.internal, "blob \(digest) is missing from the store", hint: .runCheck)
    }
    var buffer = Data()
    for seq in 0..<first.chunks {
      let stored =
        seq == 0
        ? first.chunk
        : try await reading(snapshot: false) { session in
          try await session.one("SELECT zstd, data FROM blob_chunk WHERE blob = \(key) AND seq = \(seq)").map {
            let (compressed, data) = try $0.decode((Bool, Data).self)
            return BlobCodec.Chunk(data: data, compressed: compressed)
          }
        }
      guard let stored else {
        throw OperationError(.internal, "blob \(digest) is missing its chunk \(seq)", hint: .runCheck)
      }
      try BlobCodec.decode(stored.data, compressed: stored.compressed, into: &buffer)
      try buffer.withUnsafeBytes { try body($0) }
    }
  }

  public func readBlobs(_ digests: [SHA256Hex]) async throws -> [Data?] {
    // One query for all the one-chunk blobs; a blob of several chunks is left to readBlob (nil).
    let wanted = Set(digests)
    guard !wanted.isEmpty else { return [] }
    let stored = try await reading(snapshot: false) { session in
      var stored: [SHA256Hex: BlobCodec.Chunk?] = [:]
      for row in try await session.rows(
        """
        SELECT b.sha256, b.chunk_count, c.zstd, c.data FROM blob b
        LEFT JOIN blob_chunk c ON c.blob = b.sha256 AND c.seq = 0 WHERE b.sha256 = ANY(\(wanted.map(\.bytes.buffer)))
        """)
      {
        let (key, chunks, compressed, data) = try row.decode((Data, Int, Bool?, Data?).self)
        let chunk = chunks == 1 ? data.map { BlobCodec.Chunk(data: $0, compressed: compressed ?? false) } : nil
        stored.updateValue(chunk, forKey: try Queries.digest(key))
      }
      return stored
    }
    // Decoded, at most `BlobCodec.bytesReadTogether` in all: the rest (a damaged size) is streamed.
    var held = 0
    return try digests.map { digest in
      guard let found = stored[digest] else {
        throw OperationError(.internal, "blob \(digest) is missing from the store", hint: .runCheck)
      }
      guard let chunk = found, let size = chunk.decodedSize, held + size <= BlobCodec.bytesReadTogether else {
        return nil
      }
      held += size
      return try chunk.decoded()
    }
  }

  public func missingBlobs(_ digests: [SHA256Hex]) async throws -> Set<SHA256Hex> {
    let wanted = Set(digests)
    guard !wanted.isEmpty else { return [] }
    let present = try await reading(snapshot: false) { session in
      try await session.rows("SELECT sha256 FROM blob WHERE sha256 = ANY(\(wanted.map(\.bytes.buffer)))")
        .map { try Queries.digest($0.decode(Data.self)) }
    }
    return wanted.subtracting(present)
  }

  /// Stores blobs in transactions of about this many bytes, so that no transaction runs long.
  private static let bytesPerTransaction: Int64 = 32 << 20

  public func storeBlobs(_ blobs: [BlobFile]) async throws {
    // One order for every server: two storing the same blobs wait for each other rather than deadlock.
    var unique: [SHA256Hex: BlobFile] = [:]
    for blob in blobs where unique[blob.sha256] == nil { unique[blob.sha256] = blob }
    var batch: [BlobFile] = []
    var batchBytes: Int64 = 0
    for blob in unique.values.sorted(by: { $0.sha256 < $1.sha256 }) {
      batch.append(blob)
      batchBytes += blob.size
      if batchBytes >= PostgresStore.bytesPerTransaction {
        try await storeBatch(batch)
        batch.removeAll()
        batchBytes = 0
      }
    }
    if !batch.isEmpty { try await storeBatch(batch) }
  }

  private func storeBatch(_ blobs: [BlobFile]) async throws {
    let storedAt = StoredTime.seconds(Date())
    try await writing { session in
      // A blob stored already is stored again "now": its grace period starts over, so a `gc` on another
      // server does not remove it before the change that is about to use it (the row lock taken here
      // also makes that `gc` wait, or skip it).
      let touched = Set(
        try await session.rows(
          """
          UPDATE blob SET stored_at = GREATEST(stored_at, \(storedAt))
          WHERE sha256 = ANY(\(blobs.map(\.sha256.bytes.buffer))) RETURNING sha256
          """
        ).map { try Queries.digest($0.decode(Data.self)) })
      let writer = try BlobWriter(session: session, storedAt: storedAt)
      do {
        for blob in blobs where !touched.contains(blob.sha256) { try await writer.store(blob) }
        try await writer.flush()
      } catch {
        // Nothing is left sending on the session when the transaction is rolled back.
        await writer.settle()
        throw error
      }
    }
  }

  // MARK: Changing

  @discardableResult
  public func apply(_ change: StoreChange) async throws -> Version? {
    try await writing { session in try await ChangeWriter(session: session, change: change).apply() }
  }

  // MARK: Upkeep

  public func check() async throws -> CheckReport {
    try await reading { session in try await StoreCheck(session: session).run() }
  }

  /// Removes blobs no version refers to that were stored more than `grace` ago; safe with several servers.
  ///
  /// The candidates are locked `FOR UPDATE SKIP LOCKED`: a blob a change or a store holds right now
  /// is skipped. Then they are deleted by a second statement, which sees every change committed before
  /// the locks were taken and checks again that nothing refers to them and that they are still old;
  /// a change that comes later waits for this transaction, then finds the blob gone and fails instead
  /// of referring to nothing.
  public func collectGarbage(grace: TimeInterval) async throws -> Int {
    let cutoff = StoredTime.seconds(Date()) - Int64(grace)
    return try await writing { session in
      let candidates = try await session.rows(
        """
        SELECT sha256 FROM blob b WHERE stored_at <= \(cutoff)
          AND NOT EXISTS (SELECT 1 FROM tree_blob t WHERE t.blob = b.sha256)
        FOR UPDATE SKIP LOCKED
        """
      ).map { try $0.decode(ByteBuffer.self) }
      guard !candidates.isEmpty else { return 0 }
      let removed = try await session.rows(
        """
        DELETE FROM blob b WHERE sha256 = ANY(\(candidates)) AND stored_at <= \(cutoff)
          AND NOT EXISTS (SELECT 1 FROM tree_blob t WHERE t.blob = b.sha256)
        RETURNING sha256
        """
      ).map { try $0.decode(ByteBuffer.self) }
      try await session.execute("DELETE FROM blob_chunk WHERE blob = ANY(\(removed))")
      return removed.count
    }
  }

  // MARK: Sessions with the server

  /// Runs `body` in one transaction: REPEATABLE READ READ ONLY when `snapshot`, so that a read of
  /// several statements sees one state; a single statement needs none.
  func reading<T: Sendable>(snapshot: Bool = true, _ body: @escaping @Sendable (SQLSession) async throws -> T)
    async throws -> T
  {
    try await transaction(begin: snapshot ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : nil, body)
  }

  /// Runs `body` in one READ COMMITTED transaction: committed whole, or rolled back.
  func writing<T: Sendable>(_ body: @escaping @Sendable (SQLSession) async throws -> T) async throws -> T {
    guard !readOnly else {
      throw OperationError(.permissionDenied, "the store `\(location)` was opened read-only; nothing was changed")
    }
    return try await transaction(begin: "BEGIN", body)
  }

  private func transaction<T: Sendable>(
    begin: PostgresQuery?, _ body: @escaping @Sendable (SQLSession) async throws -> T
  ) async throws -> T {
    try await ready()
    var attempt = 1
    while true {
      do {
        return try await withSession { session in
          guard let begin else { return try await body(session) }
          try await session.execute(begin)
          do {
            let result = try await body(session)
            try await session.execute("COMMIT")
            return result
          } catch {
            try? await session.execute("ROLLBACK")
            throw error
          }
        }
      } catch let error where PostgresFailure.isRetryable(error) && attempt < PostgresStore.attempts {
        logger.debug(
          "transaction retried",
          metadata: ["attempt": "\(attempt)", "sqlstate": "\(PostgresFailure.sqlState(error) ?? "")"])
        attempt += 1
        try await Task.sleep(for: .milliseconds(Int.random(in: 5...20) * attempt))
      } catch {
        throw PostgresFailure.translate(error, store: "\(location)")
      }
    }
  }

  /// Runs `body` on a connection of the pool; waits at most `connectTimeout` for one.
  ///
  /// The pool itself keeps trying to connect to a server that is down (for 15 s, then it fails every
  /// request at once until a retry succeeds), and keeps why to itself: a command must say so sooner,
  /// and a server must answer 503 sooner, with the reason. So when no connection comes within a second,
  /// a connection of our own is tried: a server that refuses it is reported at once; one that takes it
  /// (the pool is only busy, or reconnecting) gets the rest of `connectTimeout`.
  private func withSession<T: Sendable>(_ body: @escaping @Sendable (SQLSession) async throws -> T) async throws -> T {
    let leased = LeaseFlag()
    let client = client
    let logger = logger
    let timeout = connectTimeout
    let outcome = Outcome<T>()
    // The work runs in a task of its own, not a child: past the timeout the caller is answered at once,
    // while the pool's wait winds down in the background.
    let work = Task {
      do {
        let value = try await client.withConnection { connection in
          leased.value.store(true, ordering: .relaxed)
          return try await body(SQLSession(connection: connection, logger: logger))
        }
        outcome.finish(.success(value))
      } catch  where !leased.value.load(ordering: .relaxed) && !Task.isCancelled {
        // The pool gave up before a connection (its circuit breaker): say why, as the timer would.
        outcome.finish(.failure(await self.unreachable(within: timeout)))
      } catch {
        outcome.finish(.failure(error))
      }
    }
    let timer = Task {
      let first = min(timeout, .seconds(1))
      try await Task.sleep(for: first)
      guard !leased.value.load(ordering: .relaxed) else { return }
      do {
        try await self.diagnoseShared()
      } catch {
        outcome.finish(.failure(error))
        work.cancel()
        return
      }
      try await Task.sleep(for: timeout - first)
      guard !leased.value.load(ordering: .relaxed) else { return }
      outcome.finish(.failure(await self.unreachable(within: timeout)))
      work.cancel()
    }
    defer { timer.cancel() }
    return try await withTaskCancellationHandler {
      try await outcome.value()
    } onCancel: {
      work.cancel()
    }
  }

  /// Why no connection came from the pool: the error of a connection of our own (no such database,
  /// a refused password, a refused connection), else that the server takes connections but the pool
  /// got none in time (busy, or still reconnecting after an outage).
  private func unreachable(within timeout: Duration) async -> any Error {
    do {
      try await diagnoseShared()
    } catch {
      return error
    }
    return OperationError(
      .temporaryFailure,
      "the PostgreSQL server of the store `\(location)` gave no connection within \(timeout) (busy, or reconnecting); "
        + "nothing was changed, try again")
  }

  /// `diagnose`, shared by the operations that wait at the same time: a server whose pool is busy
  /// gets one more connection a second from them, not one per waiting operation.
  private func diagnoseShared() async throws {
    let location = location
    let logger = logger
    let task = diagnosis.withLock { latest in
      if let latest, latest.started.duration(to: .now) < .seconds(1) { return latest.task }
      let task = Task { try await PostgresStore.diagnose(location, logger: logger) }
      latest = (task, .now)
      return task
    }
    try await task.value
  }

  /// Connects once outside the pool, and throws the error that gives, if any.
  private static func diagnose(_ location: DatabaseLocation, logger: Logger) async throws {
    var quiet = logger
    quiet.logLevel = .critical
    let connection = try await PostgresConnection.connect(
      configuration: location.connectionConfiguration(timeout: .seconds(3)), id: 0, logger: quiet)
    try? await connection.close()
  }

  /// Checks the schema once, and migrates it when the store is opened to write.
  private func ready() async throws {
    let task = preparation.withLock { preparation in
      if let preparation { return preparation }
      let task = Task { try await self.prepare() }
      preparation = task
      return task
    }
    do {
      try await task.value
    } catch {
      preparation.withLock { if $0 == task { $0 = nil } }
      throw error
    }
  }

  private func prepare() async throws {
    let store = "\(location)"
    let create = create
    do {
      let applied = try await withSession { session -> [String] in
        switch try await Migrations.state(session) {
        case .empty where !create:
          throw OperationError(.inputUnreadable, "no store in the database `\(store)`", hint: .createStore)
        // A database an older confvault wrote is migrated even to be read: its layout may not be the
        // one this confvault reads.
        case .migrated(let names) where Set(Migrations.all.map(\.name)).isSubset(of: names):
          try Migrations.refuseUnknown(names, store: store)
          return []
        default:
          try await session.execute("BEGIN")
          do {
            let applied = try await Migrations.migrate(session, store: store)
            try await session.execute("COMMIT")
            return applied
          } catch {
            try? await session.execute("ROLLBACK")
            throw error
          }
        }
      }
      if !applied.isEmpty {
        logger.info("store schema migrated", metadata: ["store": "\(store)", "migrations": "\(applied)"])
      }
    } catch {
      throw PostgresFailure.translate(error, store: store)
    }
  }
}

/// Whether an operation got its connection: shared by the operation's task and its timer's.
private final class LeaseFlag: Sendable {
  let value = Atomic<Bool>(false)
}

/// The first result of racing work: whoever finishes first answers, later ones are dropped.
private final class Outcome<T: Sendable>: Sendable {
  private let state = Mutex<(result: Result<T, any Error>?, waiter: CheckedContinuation<T, any Error>?)>((nil, nil))

  func finish(_ result: Result<T, any Error>) {
    let waiter: CheckedContinuation<T, any Error>? = state.withLock { state in
      guard state.result == nil else { return nil }
      state.result = result
      defer { state.waiter = nil }
      return state.waiter
    }
    waiter?.resume(with: result)
  }

  func value() async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
      let ready: Result<T, any Error>? = state.withLock { state in
        if let result = state.result { return result }
        state.waiter = continuation
        return nil
      }
      if let ready { continuation.resume(with: ready) }
    }
  }
}

/// Stores files as content-addressed blobs, chunk by chunk, inside one write transaction: the chunks
/// first, then the blob's row, each `ON CONFLICT DO NOTHING` (another server may store the same
/// content at the same time: it is the same content). The file is read a chunk at a time, and its
/// digest checked before the blob's row is written; a file that changed rolls the batch back.
///
/// Blobs of one chunk, most configuration files, wait and go in together (`flush`): one statement for
/// their chunks and one for their rows, instead of two round trips to the server each.
private final class BlobWriter {
  private let session: SQLSession
  private let storedAt: Int64
  private let compressor: BlobCodec.Compressor
  private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: BlobCodec.chunkSize, alignment: 16)
  /// One-chunk blobs not yet sent, and the bytes they hold.
  private var pending: [(key: Data, size: Int64, chunk: BlobCodec.Chunk)] = []
  private var pendingBytes = 0
  /// The batch of one-chunk blobs being sent while the next is read and compressed: sent and
  /// compressed in turn, the client and the server each waited for the other (an import of 20,000
  /// files left a core idle for half of its 2 s).
  private var sending: Task<Void, any Error>?
  private static let bytesPerFlush = 4 << 20
  private static let blobsPerFlush = 2_000

  init(session: SQLSession, storedAt: Int64) throws {
    self.session = session
    self.storedAt = storedAt
    compressor = try BlobCodec.Compressor()
  }

  deinit { buffer.deallocate() }

  func store(_ blob: BlobFile) async throws {
    let key = blob.sha256.bytes
    let fd = open(blob.path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
    guard fd >= 0 else { throw SystemError(.open, blob.path) }
    defer { close(fd) }
    var hasher = SHA256Stream()
    var done: Int64 = 0
    var sequence = 0
    var storedSize: Int64 = 0
    repeat {
      var filled = 0
      let want = Int(min(Int64(buffer.count), blob.size - done))
      while filled < want {
        let count = pread(fd, buffer.baseAddress! + filled, want - filled, off_t(blob.offset + done + Int64(filled)))
        if count < 0 {
          if errno == EINTR { continue }
          throw SystemError(.read, blob.path)
        }
        if count == 0 { break }
        filled += count
      }
      let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<filled])
      hasher.update(chunk)
      done += Int64(filled)
      let encoded = compressor.encode(chunk)
      if sequence == 0, done == blob.size, filled == want {
        guard hasher.finalize() == blob.sha256 else { throw Self.changed(blob) }
        pending.append((key, blob.size, encoded))
        pendingBytes += encoded.data.count
        if pendingBytes >= Self.bytesPerFlush || pending.count >= Self.blobsPerFlush {
          // At most one batch sending and one filling: the one before is waited for first.
          try await sent()
          sendPending()
        }
        return
      }
      // A blob of several chunks, or one read shorter than listed. Blobs come in digest order, and
      // every server inserts them in that order (so two storing the same blobs wait for each other
      // instead of deadlocking): the ones waiting go in first, and nothing else is on the session
      // meanwhile.
      if sequence == 0 { try await flush() }
      try await session.execute(
        """
        INSERT INTO blob_chunk (blob, seq, zstd, data) VALUES (\(key), \(sequence), \(encoded.compressed), \(encoded.data))
        ON CONFLICT DO NOTHING
        """)
      storedSize += Int64(encoded.data.count)
      sequence += 1
      if filled < want { break }  // the file is shorter than listed
    } while done < blob.size
    guard done == blob.size, hasher.finalize() == blob.sha256 else { throw Self.changed(blob) }
    try await session.execute(
      """
      INSERT INTO blob (sha256, size, stored_size, chunk_count, stored_at)
      VALUES (\(key), \(blob.size), \(storedSize), \(sequence), \(storedAt)) ON CONFLICT DO NOTHING
      """)
  }

  private static func changed(_ blob: BlobFile) -> OperationError {
    OperationError(.conflict, "`\(blob.path)` changed while it was being stored; nothing was changed, try again")
  }

  /// Sends the one-chunk blobs that wait, once those sent before are in, and waits for them.
  func flush() async throws {
    sendPending()
    try await sent()
  }

  /// Waits for the batch being sent, if any; its error is thrown here.
  private func sent() async throws {
    guard let sending else { return }
    self.sending = nil
    try await sending.value
  }

  /// Waits for the batch being sent, if any, and lets its error go: for a store that failed.
  func settle() async {
    try? await sent()
  }

  /// Starts sending the one-chunk blobs that wait, after those sent before (blobs go in in digest
  /// order): the caller goes on reading the next ones meanwhile.
  private func sendPending() {
    guard !pending.isEmpty else { return }
    let (batch, previous, session, storedAt) = (pending, sending, session, storedAt)
    pending = []
    pendingBytes = 0
    sending = Task {
      try await previous?.value
      try await BlobWriter.send(batch, session: session, storedAt: storedAt)
    }
  }

  /// Inserts one-chunk blobs: their chunks, then their rows.
  private static func send(
    _ batch: [(key: Data, size: Int64, chunk: BlobCodec.Chunk)], session: SQLSession, storedAt: Int64
  ) async throws {
    let keys = batch.map(\.key.buffer)
    try await session.execute(
      """
      INSERT INTO blob_chunk (blob, seq, zstd, data)
      SELECT key, 0, zstd, data FROM unnest(\(keys)::bytea[], \(batch.map(\.chunk.compressed))::boolean[],
        \(batch.map(\.chunk.data.buffer))::bytea[]) AS p(key, zstd, data)
      ON CONFLICT DO NOTHING
      """)
    try await session.execute(
      """
      INSERT INTO blob (sha256, size, stored_size, chunk_count, stored_at)
      SELECT key, size, stored_size, 1, \(storedAt) FROM unnest(\(keys)::bytea[], \(batch.map(\.size))::bigint[],
        \(batch.map { Int64($0.chunk.data.count) })::bigint[]) AS p(key, size, stored_size)
      ON CONFLICT DO NOTHING
      """)
  }
}

extension PostgresStore {
  /// Runs SQL as it is, in a transaction of its own, and returns the first column of each row as text:
  /// for tests that look at or tamper with the database directly.
  func rawSQL(_ sql: String) async throws -> [String?] {
    try await transaction(begin: "BEGIN") { session in
      try await session.rows(PostgresQuery(unsafeSQL: sql)).map { try $0.decode(String?.self) }
    }
  }
}
