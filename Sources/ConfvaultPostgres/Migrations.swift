import ConfvaultCore
import PostgresNIO

/// The store's schema, as named migrations kept in a table of their own. A shipped migration is
/// frozen: change the schema by adding one. Migrations are SQL only, never application types; the
/// one exception converts folders to records of format 1, which every later confvault reads.
///
/// Two servers that start at once migrate once: every migration runs in one transaction that first
/// takes a transaction-level advisory lock, so the second waits, then finds the work done.
enum Migrations {
  /// The advisory lock's key: "confvault" in the first bytes, so other applications' locks are unlikely to meet it.
  static let lockKey: Int64 = 0x636F_6E66_7661_756C

  /// One migration: statements (one each: the extended protocol runs one at a time), then a
  /// conversion in code if any, then more statements.
  struct Migration: Sendable {
    var name: String
    var statements: [String]
    var convert: (@Sendable (SQLSession) async throws -> Void)? = nil
    var finally: [String] = []
  }

  static let all: [Migration] = [
    Migration(
      name: "v1-versions-blobs-trees-audit-principals",
      statements: [
        """
        CREATE TABLE app (
          id BIGSERIAL PRIMARY KEY,
          name TEXT NOT NULL UNIQUE,
          created_at BIGINT NOT NULL,
          next_version BIGINT NOT NULL DEFAULT 1
        )
        """,
        """
        CREATE TABLE environment (
          id BIGSERIAL PRIMARY KEY,
          app_id BIGINT NOT NULL REFERENCES app(id),
          name TEXT NOT NULL,
          is_production BOOLEAN NOT NULL DEFAULT false,
          created_at BIGINT NOT NULL,
          UNIQUE (app_id, name)
        )
        """,
        "CREATE UNIQUE INDEX one_production_per_app ON environment(app_id) WHERE is_production",
        """
        CREATE TABLE blob (
          sha256 BYTEA PRIMARY KEY,
          size BIGINT NOT NULL,
          stored_size BIGINT NOT NULL,
          chunk_count INTEGER NOT NULL,
          stored_at BIGINT NOT NULL
        )
        """,
        """
        CREATE TABLE blob_chunk (
          blob BYTEA NOT NULL,
          seq INTEGER NOT NULL,
          zstd BOOLEAN NOT NULL,
          data BYTEA NOT NULL,
          PRIMARY KEY (blob, seq)
        )
        """,
        // The chunks are zstd-compressed already (or incompressible): PostgreSQL's own compression
        // would spend time for nothing. EXTERNAL stores them out of line, uncompressed.
        "ALTER TABLE blob_chunk ALTER COLUMN data SET STORAGE EXTERNAL",
        "CREATE TABLE tree_node (digest BYTEA PRIMARY KEY)",
        """
        CREATE TABLE tree_entry (
          node BYTEA NOT NULL,
          name TEXT NOT NULL,
          is_folder BOOLEAN NOT NULL,
          executable BOOLEAN NOT NULL,
          size BIGINT NOT NULL,
          target BYTEA NOT NULL,
          PRIMARY KEY (node, name)
        )
        """,
        // `gc` asks whether anything refers to a blob.
        "CREATE INDEX tree_entry_by_target ON tree_entry(target) WHERE NOT is_folder",
        """
        CREATE TABLE version (
          app_id BIGINT NOT NULL REFERENCES app(id),
          number BIGINT NOT NULL,
          environment TEXT NOT NULL,
          author TEXT NOT NULL,
          created_at BIGINT NOT NULL,
          comment TEXT NOT NULL,
          origin TEXT NOT NULL CHECK (origin IN ('push', 'import', 'restore')),
          parent BIGINT,
          restored_from BIGINT,
          imported_archive_sha256 TEXT,
          imported_app TEXT,
          imported_environment TEXT,
          imported_version BIGINT,
          backup BOOLEAN NOT NULL DEFAULT false,
          synced_at BIGINT,
          tree BYTEA NOT NULL REFERENCES tree_node(digest),
          tree_digest TEXT NOT NULL,
          file_count BIGINT NOT NULL,
          total_size BIGINT NOT NULL,
          PRIMARY KEY (app_id, number)
        )
        """,
        "CREATE INDEX version_by_environment ON version(app_id, environment, number)",
        """
        CREATE TABLE head (
          environment_id BIGINT PRIMARY KEY REFERENCES environment(id),
          version BIGINT NOT NULL,
          moved_at BIGINT NOT NULL
        )
        """,
        """
        CREATE TABLE audit (
          id BIGSERIAL PRIMARY KEY,
          at BIGINT NOT NULL,
          author TEXT NOT NULL,
          app TEXT NOT NULL,
          environment TEXT,
          action TEXT NOT NULL,
          version BIGINT,
          archive_sha256 TEXT,
          detail TEXT NOT NULL
        )
        """,
        "CREATE INDEX audit_by_app ON audit(app, id)",
        // Append-only in the database itself: whatever client connects, rows are never changed or removed.
        """
        CREATE FUNCTION confvault_audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'the audit log is append-only' USING ERRCODE = 'CVA01';
        END
        $$
        """,
        """
        CREATE TRIGGER audit_is_append_only BEFORE UPDATE OR DELETE ON audit
          FOR EACH ROW EXECUTE FUNCTION confvault_audit_is_append_only()
        """,
        """
        CREATE TRIGGER audit_is_never_truncated BEFORE TRUNCATE ON audit
          FOR EACH STATEMENT EXECUTE FUNCTION confvault_audit_is_append_only()
        """,
        """
        CREATE TABLE user_account (
          name TEXT PRIMARY KEY,
          role TEXT NOT NULL CHECK (role IN ('viewer', 'deployer', 'releaser', 'admin')),
          password_hash TEXT NOT NULL,
          created_at BIGINT NOT NULL
        )
        """,
        """
        CREATE TABLE api_token (
          name TEXT PRIMARY KEY,
          role TEXT NOT NULL CHECK (role IN ('viewer', 'deployer', 'releaser', 'admin')),
          hash BYTEA NOT NULL UNIQUE,
          created_at BIGINT NOT NULL,
          revoked_at BIGINT
        )
        """,
        """
        CREATE TABLE session (
          hash BYTEA PRIMARY KEY,
          user_name TEXT NOT NULL REFERENCES user_account(name) ON DELETE CASCADE,
          csrf_token TEXT NOT NULL,
          expires_at BIGINT NOT NULL
        )
        """,
      ]
    ),
    // Folders as one compact record each, a delta against the folder at the same path in the parent
    // version where that pays, instead of a row per entry per folder; and the blobs folders refer to,
    // which is what `gc` asks.
    Migration(
      name: "v2-folder-records",
      statements: [
        "ALTER TABLE version DROP CONSTRAINT version_tree_fkey",
        "ALTER TABLE tree_node RENAME TO tree_node_v1",
        "ALTER TABLE tree_entry RENAME TO tree_entry_v1",
        """
        CREATE TABLE tree_node (
          digest BYTEA PRIMARY KEY,
          base BYTEA,
          depth INTEGER NOT NULL,
          zstd BOOLEAN NOT NULL,
          data BYTEA NOT NULL
        )
        """,
        "CREATE TABLE tree_blob (blob BYTEA PRIMARY KEY)",
      ],
      convert: { session in try await FolderConversion(session: session).run() },
      finally: [
        "DROP TABLE tree_entry_v1",
        "DROP TABLE tree_node_v1",
        "ALTER TABLE version ADD CONSTRAINT version_tree_fkey FOREIGN KEY (tree) REFERENCES tree_node(digest)",
      ]
    ),
  ]

  /// What the database holds: nothing yet, or the migrations applied to it.
  enum State: Equatable {
    case empty
    case migrated(Set<String>)
  }

  static func state(_ session: SQLSession) async throws -> State {
    let table = try await session.one("SELECT to_regclass('confvault_migration') IS NOT NULL")
    guard try table?.decode(Bool.self) == true else { return .empty }
    return .migrated(
      Set(try await session.rows("SELECT name FROM confvault_migration").map { try $0.decode(String.self) }))
  }

  /// Refuses a database a newer confvault migrated: this one would misread or damage a schema it
  /// does not know, so it reads no more of it and writes nothing.
  ///
  /// - Throws: `.operationFailed` with the hint `.upgrade`, naming the migrations it does not know.
  static func refuseUnknown(_ applied: Set<String>, store: String) throws {
    let unknown = applied.subtracting(all.map(\.name)).sorted()
    guard unknown.isEmpty else {
      throw OperationError(
        .operationFailed,
        "the store `\(store)` was changed by a newer confvault: its schema has the migration"
          + (unknown.count == 1 ? " " : "s ") + unknown.map { "`\($0)`" }.joined(separator: ", ")
          + ", which this confvault does not know; nothing was changed",
        hint: .upgrade)
    }
  }

  /// Applies the migrations the database lacks, inside the caller's transaction, under the advisory lock.
  ///
  /// - Returns: the names of the migrations applied now.
  static func migrate(_ session: SQLSession, store: String) async throws -> [String] {
    try await session.execute("SELECT pg_advisory_xact_lock(\(lockKey))")
    try await session.execute(
      """
      CREATE TABLE IF NOT EXISTS confvault_migration (
        name TEXT PRIMARY KEY,
        applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
      )
      """)
    let applied = Set(try await session.rows("SELECT name FROM confvault_migration").map { try $0.decode(String.self) })
    try refuseUnknown(applied, store: store)
    var done: [String] = []
    for migration in all where !applied.contains(migration.name) {
      for statement in migration.statements { try await session.execute(PostgresQuery(unsafeSQL: statement)) }
      try await migration.convert?(session)
      for statement in migration.finally { try await session.execute(PostgresQuery(unsafeSQL: statement)) }
      try await session.execute("INSERT INTO confvault_migration (name) VALUES (\(migration.name))")
      done.append(migration.name)
    }
    return done
  }
}
