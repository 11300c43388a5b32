import ConfvaultCore
import GRDB

/// The store's schema, as named migrations. A shipped migration is frozen: change the schema by adding one.
///
/// Migrations use SQL only, never application types, so they mean the same thing forever; the one
/// exception converts folders to records of format 1, which every later confvault reads.
enum Migrations {
  static var migrator: DatabaseMigrator {
    var migrator = DatabaseMigrator()
    migrator.registerMigration("v1-versions-blobs-trees-audit") { db in
      try db.execute(
        sql: """
          CREATE TABLE app (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created_at INTEGER NOT NULL,
            next_version INTEGER NOT NULL DEFAULT 1
          );
          CREATE TABLE environment (
            id INTEGER PRIMARY KEY,
            app_id INTEGER NOT NULL REFERENCES app(id),
            name TEXT NOT NULL,
            is_production INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL,
            UNIQUE (app_id, name)
          );
          CREATE UNIQUE INDEX one_production_per_app ON environment(app_id) WHERE is_production = 1;

          CREATE TABLE blob (
            sha256 BLOB PRIMARY KEY,
            size INTEGER NOT NULL,
            stored_size INTEGER NOT NULL,
            chunk_count INTEGER NOT NULL
          ) WITHOUT ROWID;
          CREATE TABLE blob_chunk (
            id INTEGER PRIMARY KEY,
            blob BLOB NOT NULL,
            seq INTEGER NOT NULL,
            zstd INTEGER NOT NULL,
            data BLOB NOT NULL
          );
          CREATE UNIQUE INDEX blob_chunk_order ON blob_chunk(blob, seq);

          CREATE TABLE tree_node (digest BLOB PRIMARY KEY) WITHOUT ROWID;
          CREATE TABLE tree_entry (
            node BLOB NOT NULL,
            name TEXT NOT NULL,
            is_folder INTEGER NOT NULL,
            executable INTEGER NOT NULL,
            size INTEGER NOT NULL,
            target BLOB NOT NULL,
            PRIMARY KEY (node, name)
          ) WITHOUT ROWID;

          CREATE TABLE version (
            app_id INTEGER NOT NULL REFERENCES app(id),
            number INTEGER NOT NULL,
            environment TEXT NOT NULL,
            author TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            comment TEXT NOT NULL,
            origin TEXT NOT NULL CHECK (origin IN ('push', 'import', 'restore')),
            parent INTEGER,
            restored_from INTEGER,
            imported_archive_sha256 TEXT,
            imported_app TEXT,
            imported_environment TEXT,
            imported_version INTEGER,
            backup INTEGER NOT NULL DEFAULT 0,
            synced_at INTEGER,
            tree BLOB NOT NULL REFERENCES tree_node(digest),
            tree_digest TEXT NOT NULL,
            file_count INTEGER NOT NULL,
            total_size INTEGER NOT NULL,
            PRIMARY KEY (app_id, number)
          ) WITHOUT ROWID;
          CREATE INDEX version_by_environment ON version(app_id, environment, number);

          CREATE TABLE head (
            environment_id INTEGER PRIMARY KEY REFERENCES environment(id),
            version INTEGER NOT NULL,
            moved_at INTEGER NOT NULL
          );

          CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at INTEGER NOT NULL,
            author TEXT NOT NULL,
            app TEXT NOT NULL,
            environment TEXT,
            action TEXT NOT NULL,
            version INTEGER,
            archive_sha256 TEXT,
            detail TEXT NOT NULL
          );
          CREATE INDEX audit_by_app ON audit(app, id);
          CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
          CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
          """)
    }
    // When each blob was stored, so that `gc` spares blobs stored for a change still in flight.
    // Blobs of older stores count as stored long ago (0).
    migrator.registerMigration("v2-blob-stored-at") { db in
      try db.execute(sql: "ALTER TABLE blob ADD COLUMN stored_at INTEGER NOT NULL DEFAULT 0")
    }
    // The server's users, API tokens and sessions: secrets as hashes only.
    migrator.registerMigration("v3-users-tokens-sessions") { db in
      try db.execute(
        sql: """
          CREATE TABLE user_account (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL CHECK (role IN ('viewer', 'deployer', 'releaser', 'admin')),
            password_hash TEXT NOT NULL,
            created_at INTEGER NOT NULL
          );
          CREATE TABLE api_token (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL CHECK (role IN ('viewer', 'deployer', 'releaser', 'admin')),
            hash BLOB NOT NULL UNIQUE,
            created_at INTEGER NOT NULL,
            revoked_at INTEGER
          );
          CREATE TABLE session (
            hash BLOB PRIMARY KEY,
            user_name TEXT NOT NULL REFERENCES user_account(name) ON DELETE CASCADE,
            csrf_token TEXT NOT NULL,
            expires_at INTEGER NOT NULL
          ) WITHOUT ROWID;
          """)
    }
    // Folders as one compact record each, a delta against the folder at the same path in the parent
    // version where that pays, instead of a row per entry per folder; and the blobs folders refer to,
    // which is what `gc` asks. The version table's references to `tree_node` stay as they are written
    // while the old tables are renamed away.
    migrator.registerMigration("v4-folder-records") { db in
      try db.execute(sql: "PRAGMA legacy_alter_table = ON")
      try db.execute(
        sql: """
          ALTER TABLE tree_node RENAME TO tree_node_v1;
          ALTER TABLE tree_entry RENAME TO tree_entry_v1;
          """)
      try db.execute(sql: "PRAGMA legacy_alter_table = OFF")
      try db.execute(
        sql: """
          CREATE TABLE tree_node (
            digest BLOB PRIMARY KEY,
            base BLOB,
            depth INTEGER NOT NULL,
            zstd INTEGER NOT NULL,
            data BLOB NOT NULL
          ) WITHOUT ROWID;
          CREATE TABLE tree_blob (blob BLOB PRIMARY KEY) WITHOUT ROWID;
          """)
      try FolderConversion(db: db).run()
      try db.execute(sql: "DROP TABLE tree_entry_v1; DROP TABLE tree_node_v1")
    }
    // Blobs and folders stored compactly. A blob of one chunk may be a delta against another, its
    // base, which is then stored whole; a blob's chunks are consecutive rows of `blob_chunk`, from
    // `first_chunk`, instead of rows keyed by the blob's digest again with an index of it a third time;
    // a blob some folder names is marked `named`, instead of listed in `tree_blob`, a fourth copy.
    // A folder record's base is the row of its base, not its digest again.
    // Folder records move to a table kept in the order they are written, found through an index on
    // their digest: keyed by the digest itself, a record of a few KiB took an overflow page of 16 KiB
    // of its own, and random keys left pages half full. The version table's references to
    // `tree_node` stay as they are written while the old table is renamed away.
    migrator.registerMigration("v5-compact-blobs-and-folders") { db in
      try db.execute(
        sql: """
          CREATE TEMP TABLE chunk_place AS
            SELECT blob, seq, ROW_NUMBER() OVER (ORDER BY blob, seq) AS id FROM blob_chunk
            WHERE blob IN (SELECT sha256 FROM blob);
          CREATE TABLE blob_chunk_v5 (id INTEGER PRIMARY KEY, zstd INTEGER NOT NULL, data BLOB NOT NULL);
          INSERT INTO blob_chunk_v5 (id, zstd, data)
            SELECT p.id, c.zstd, c.data FROM chunk_place p JOIN blob_chunk c ON c.blob = p.blob AND c.seq = p.seq
            ORDER BY p.id;
          CREATE TABLE blob_v5 (
            sha256 BLOB PRIMARY KEY,
            size INTEGER NOT NULL,
            stored_size INTEGER NOT NULL,
            chunk_count INTEGER NOT NULL,
            first_chunk INTEGER NOT NULL,
            stored_at INTEGER NOT NULL,
            base BLOB,
            named INTEGER NOT NULL DEFAULT 0
          ) WITHOUT ROWID;
          INSERT INTO blob_v5 (sha256, size, stored_size, chunk_count, first_chunk, stored_at, named)
            SELECT b.sha256, b.size, b.stored_size, COALESCE(p.count, 0), COALESCE(p.first, 0), b.stored_at,
              b.sha256 IN (SELECT blob FROM tree_blob)
            FROM blob b LEFT JOIN (SELECT blob, COUNT(*) AS count, MIN(id) AS first FROM chunk_place GROUP BY blob) p
              ON p.blob = b.sha256;
          DROP TABLE chunk_place;
          DROP TABLE blob_chunk;
          DROP TABLE blob;
          DROP TABLE tree_blob;
          ALTER TABLE blob_chunk_v5 RENAME TO blob_chunk;
          ALTER TABLE blob_v5 RENAME TO blob;
          """)
      try db.execute(sql: "PRAGMA legacy_alter_table = ON")
      try db.execute(sql: "ALTER TABLE tree_node RENAME TO tree_node_v4")
      try db.execute(sql: "PRAGMA legacy_alter_table = OFF")
      try db.execute(
        sql: """
          CREATE TABLE tree_node (
            id INTEGER PRIMARY KEY,
            digest BLOB NOT NULL UNIQUE,
            base INTEGER,
            depth INTEGER NOT NULL,
            zstd INTEGER NOT NULL,
            data BLOB NOT NULL
          );
          INSERT INTO tree_node (digest, depth, zstd, data)
            SELECT digest, depth, zstd, data FROM tree_node_v4 ORDER BY depth, digest;
          UPDATE tree_node SET base = (
            SELECT b.id FROM tree_node_v4 o JOIN tree_node b ON b.digest = o.base WHERE o.digest = tree_node.digest);
          DROP TABLE tree_node_v4;
          """)
    }
    // Each version adds a few folder records of about 50 bytes: a unique index of their whole 32-byte
    // digests cost as much again. The index keeps the digest's first 8 bytes, and a lookup compares
    // the whole digest in the row (`Queries.folderIs`). A version names its tree by the root
    // record's row instead of its digest, and keeps its tree digest as 32 bytes instead of 71
    // characters of text. (A root that is missing, in a damaged store, becomes row 0, which no
    // record has: check reports the version's tree missing.)
    migrator.registerMigration("v6-lean-folder-index-and-tree-digest") { db in
      try db.execute(sql: "PRAGMA legacy_alter_table = ON")
      try db.execute(sql: "ALTER TABLE tree_node RENAME TO tree_node_v5")
      try db.execute(sql: "ALTER TABLE version RENAME TO version_v5")
      try db.execute(sql: "PRAGMA legacy_alter_table = OFF")
      try db.execute(
        sql: """
          CREATE TABLE tree_node (
            id INTEGER PRIMARY KEY,
            digest BLOB NOT NULL,
            base INTEGER,
            depth INTEGER NOT NULL,
            zstd INTEGER NOT NULL,
            data BLOB NOT NULL
          );
          INSERT INTO tree_node (id, digest, base, depth, zstd, data)
            SELECT id, digest, base, depth, zstd, data FROM tree_node_v5 ORDER BY id;
          DROP TABLE tree_node_v5;
          CREATE INDEX tree_node_by_digest ON tree_node(substr(digest, 1, 8));
          CREATE TABLE version (
            app_id INTEGER NOT NULL REFERENCES app(id),
            number INTEGER NOT NULL,
            environment TEXT NOT NULL,
            author TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            comment TEXT NOT NULL,
            origin TEXT NOT NULL CHECK (origin IN ('push', 'import', 'restore')),
            parent INTEGER,
            restored_from INTEGER,
            imported_archive_sha256 TEXT,
            imported_app TEXT,
            imported_environment TEXT,
            imported_version INTEGER,
            backup INTEGER NOT NULL DEFAULT 0,
            synced_at INTEGER,
            tree INTEGER NOT NULL,
            tree_digest BLOB NOT NULL,
            file_count INTEGER NOT NULL,
            total_size INTEGER NOT NULL,
            PRIMARY KEY (app_id, number)
          ) WITHOUT ROWID;
          """)
      // This SQLite has no unhex(): the text becomes bytes here. A tree digest that is not
      // `sha256:` and 64 hexadecimal digits (a damaged row) is kept as its text, for check to report.
      let insert = try db.makeStatement(
        sql: """
          INSERT INTO version (app_id, number, environment, author, created_at, comment, origin, parent,
            restored_from, imported_archive_sha256, imported_app, imported_environment, imported_version,
            backup, synced_at, tree, tree_digest, file_count, total_size)
          SELECT app_id, number, environment, author, created_at, comment, origin, parent,
            restored_from, imported_archive_sha256, imported_app, imported_environment, imported_version,
            backup, synced_at,
            COALESCE((SELECT n.id FROM tree_node n WHERE substr(n.digest, 1, 8) = substr(v.tree, 1, 8)
              AND n.digest = v.tree), 0),
            ?, file_count, total_size
          FROM version_v5 v WHERE app_id = ? AND number = ?
          """)
      let rows = try Row.fetchCursor(db, sql: "SELECT app_id, number, tree_digest FROM version_v5")
      while let row = try rows.next() {
        let text: String = row["tree_digest"]
        let digest: any DatabaseValueConvertible = TreeDigest(text).map { $0.sha256.bytes } ?? text
        try insert.execute(arguments: [digest, row["app_id"], row["number"]])
      }
      try db.execute(
        sql: """
          DROP TABLE version_v5;
          CREATE INDEX version_by_environment ON version(app_id, environment, number);
          """)
    }
    // A delta names its base by the row of the base's one chunk, two or three bytes, instead of the
    // base's 32-byte digest again: a third of every delta's row. A base that is missing or not
    // stored whole in one chunk (a damaged store) becomes row 0, which no chunk has: check reports it.
    // The stored size, which nothing read (it is the length of the chunks), goes.
    migrator.registerMigration("v7-lean-blob-rows") { db in
      try db.execute(
        sql: """
          CREATE TABLE blob_v7 (
            sha256 BLOB PRIMARY KEY,
            size INTEGER NOT NULL,
            chunk_count INTEGER NOT NULL,
            first_chunk INTEGER NOT NULL,
            stored_at INTEGER NOT NULL,
            base INTEGER,
            named INTEGER NOT NULL DEFAULT 0
          ) WITHOUT ROWID;
          INSERT INTO blob_v7 (sha256, size, chunk_count, first_chunk, stored_at, base, named)
            SELECT b.sha256, b.size, b.chunk_count, b.first_chunk, b.stored_at,
              CASE WHEN b.base IS NULL THEN NULL ELSE COALESCE(
                (SELECT w.first_chunk FROM blob w WHERE w.sha256 = b.base AND w.base IS NULL AND w.chunk_count = 1),
                0) END,
              b.named
            FROM blob b ORDER BY b.sha256;
          DROP TABLE blob;
          ALTER TABLE blob_v7 RENAME TO blob;
          """)
    }
    return migrator
  }
}

extension Migrations {
  /// Refuses a store a newer confvault migrated: this one would misread or damage a schema it does
  /// not know, so it reads no more of it and writes nothing.
  ///
  /// - Throws: `.operationFailed` with the hint `.upgrade`, naming the migrations it does not know.
  static func refuseUnknown(_ db: Database, store folder: String) throws {
    let migrator = migrator
    let unknown = try migrator.appliedIdentifiers(db).subtracting(migrator.migrations).sorted()
    guard unknown.isEmpty else {
      throw OperationError(
        .operationFailed,
        "the store `\(folder)` was changed by a newer confvault: its schema has the migration"
          + (unknown.count == 1 ? " " : "s ") + unknown.map { "`\($0)`" }.joined(separator: ", ")
          + ", which this confvault does not know; nothing was changed",
        hint: .upgrade)
    }
  }
}
