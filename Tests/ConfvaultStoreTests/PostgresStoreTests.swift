import ConfvaultCore
import ConfvaultTestSupport
import Foundation
import Logging
import Testing

@testable import ConfvaultPostgres

/// What only the PostgreSQL store promises: its schema, its migrations, several servers on one
/// database, and how it reads a URL and finds a password.
@Suite struct PostgresStoreTests {
  let logger = Logger(label: "postgres-store-test")

  private func open(_ url: String, readOnly: Bool = false, create: Bool = false) throws -> PostgresStore {
    let location = try DatabaseLocation(url: url, environment: [:], defaultUser: PostgresCluster.role)
    return try PostgresStore(location: location, readOnly: readOnly, create: create, lockTimeout: 60, logger: logger)
  }

  @Test("the audit log refuses UPDATE, DELETE and TRUNCATE in the database itself, whoever connects")
  func auditAppendOnly() async throws {
    let scratch = try ScratchFolder()
    let fixture = StoreUnderTest(store: try PostgresCluster.shared().newStore(), folder: scratch)
    try await fixture.createShop()
    let store = try #require(fixture.store as? PostgresStore)
    let before = try await store.audit(app: "shop", limit: 100)
    for statement in ["UPDATE audit SET author = 'mallory'", "DELETE FROM audit", "TRUNCATE audit"] {
      let refused = await #expect(throws: OperationError.self, "\(statement)") { try await store.rawSQL(statement) }
      #expect(refused?.message.contains("append-only") == true, "\(statement): \(String(describing: refused))")
    }
    #expect(try await store.audit(app: "shop", limit: 100) == before)
    #expect(before.count == 3)
  }

  @Test("content is kept in bytea chunks stored EXTERNAL (no PostgreSQL compression), the zstd chunks of SQLite")
  func chunkStorage() async throws {
    let scratch = try ScratchFolder()
    let fixture = StoreUnderTest(store: try PostgresCluster.shared().newStore(), folder: scratch)
    let store = try #require(fixture.store as? PostgresStore)
    let text = String(repeating: "compressible line\n", count: 5000)
    let (file, blob) = try fixture.file("a.txt", text)
    try await store.storeBlobs([blob])
    let storage = try await store.rawSQL(
      "SELECT attstorage::text FROM pg_attribute WHERE attrelid = 'blob_chunk'::regclass AND attname = 'data'")
    #expect(storage == ["e"])
    let stored = try await store.rawSQL(
      "SELECT zstd::text || ' ' || length(data)::text FROM blob_chunk WHERE blob = decode('\(file.sha256.value)', 'hex')"
    )
    let parts = try #require(stored.first??.split(separator: " "))
    #expect(parts.first == "true" && Int(parts.last ?? "") ?? .max < text.utf8.count / 10, "\(stored)")
  }

  @Test(
    "small blobs are sent in batches while the next are read: all are stored, and a file changed after the first batches were sent leaves none"
  )
  func blobBatches() async throws {
    let scratch = try ScratchFolder()
    let fixture = StoreUnderTest(store: try PostgresCluster.shared().newStore(), folder: scratch)
    let store = try #require(fixture.store as? PostgresStore)
    // Two whole batches of 2,000 one-chunk blobs, and part of a third: one transaction.
    let blobs = try (0..<4_500).map { try fixture.file("f\($0).txt", "file \($0)\n").1 }.sorted {
      $0.sha256 < $1.sha256
    }
    let changed = blobs[4_200]
    let original = try Data(contentsOf: URL(fileURLWithPath: changed.path))
    // Changed with its length kept (the digest tells), then cut short (the read tells).
    for content in [Data("F".utf8) + original.dropFirst(), original.dropLast()] {
      try content.write(to: URL(fileURLWithPath: changed.path))
      let refused = await #expect(throws: OperationError.self) { try await store.storeBlobs(blobs) }
      #expect(refused?.kind == .conflict, "\(String(describing: refused))")
      #expect(try await store.missingBlobs(blobs.map(\.sha256)).count == blobs.count)
    }
    try original.write(to: URL(fileURLWithPath: changed.path))
    try await store.storeBlobs(blobs)
    #expect(try await store.missingBlobs(blobs.map(\.sha256)).isEmpty)
    let rows = try await store.rawSQL("SELECT count(*)::text FROM blob_chunk")
    #expect(rows == ["\(blobs.count)"])
  }

  @Test("two stores starting at once on one database migrate it once, then share numbering without gaps")
  func twoServers() async throws {
    let url = try PostgresCluster.shared().newDatabaseURL()
    let first = try open(url, create: true)
    let second = try open(url, create: true)
    async let a = first.apps()
    async let b = second.apps()
    let (appsOfFirst, appsOfSecond) = try await (a, b)
    #expect(appsOfFirst.isEmpty && appsOfSecond.isEmpty)
    let migrations = try await first.rawSQL("SELECT name FROM confvault_migration")
    #expect(migrations == Migrations.all.map(\.name))
    let scratch = try ScratchFolder()
    let one = StoreUnderTest(store: first, folder: scratch)
    let two = StoreUnderTest(store: second, folder: scratch)
    try await one.createShop()
    try await withThrowingTaskGroup(of: Void.self) { group in
      for writer in 0..<6 {
        let fixture = writer % 2 == 0 ? one : two
        group.addTask {
          for round in 0..<4 {
            while true {
              let head = try await fixture.head("dev")
              do {
                try await fixture.addVersion("dev", ["w.json": "\(writer)-\(round)"], expectedHead: head)
                break
              } catch let error as OperationError where error.kind == .conflict {
                continue
              }
            }
          }
        }
      }
      try await group.waitForAll()
    }
    let versions = try await second.versions(app: "shop", environment: "dev", before: nil, limit: 100)
    #expect(versions.map(\.number).sorted() == Array(1...24))
    for (older, newer) in zip(versions.reversed(), versions.reversed().dropFirst()) {
      #expect(newer.parent == older.number, "no head move was lost")
    }
    #expect(try await first.check().isConsistent)
  }

  @Test("a database in the first layout (a row per folder entry) is converted to folder records, read-only or not")
  func convertsFirstLayout() async throws {
    let cluster = try PostgresCluster.shared()
    let url = try cluster.newDatabaseURL()
    // Versions 1 to 3 of `shop`/dev written as the first migration's tables hold them.
    var versions: [[ManifestFile]] = []
    var contents: [SHA256Hex: String] = [:]
    var files: [String: String] = ["top.yaml": "top: 1"]
    for index in 0..<40 { files["big/item-\(index).yaml"] = "id: \(index)" }
    for change in 0..<3 {
      files["big/item-\(change).yaml"] = "id: changed \(change)"
      versions.append(
        files.map { path, text in
          let digest = SHA256Hex.of(Data(text.utf8))
          contents[digest] = text
          return ManifestFile(path: path, size: Int64(text.utf8.count), mode: .regular, sha256: digest)
        })
    }
    func bytes(_ data: Data) -> String { "decode('\(hexString(data))', 'hex')" }
    var sql = [
      "CREATE TABLE confvault_migration (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    ]
    sql += Migrations.all[0].statements
    sql.append("INSERT INTO confvault_migration (name) VALUES ('\(Migrations.all[0].name)')")
    sql.append("INSERT INTO app (name, created_at, next_version) VALUES ('shop', 1800000000, 4)")
    sql.append("INSERT INTO environment (app_id, name, is_production, created_at) VALUES (1, 'dev', false, 1800000000)")
    for (digest, text) in contents {
      sql.append(
        "INSERT INTO blob VALUES (\(bytes(digest.bytes)), \(text.utf8.count), \(text.utf8.count), 1, 0)")
      sql.append("INSERT INTO blob_chunk VALUES (\(bytes(digest.bytes)), 0, false, \(bytes(Data(text.utf8))))")
    }
    for (index, version) in versions.enumerated() {
      let folders = TreeNode.build(version)
      for (digest, node) in folders.map({ ($0.digest, $0.node) }) {
        sql.append("INSERT INTO tree_node VALUES (\(bytes(digest))) ON CONFLICT DO NOTHING")
        for entry in node.entries {
          switch entry {
          case .file(let name, _, let size, let blob):
            sql.append(
              "INSERT INTO tree_entry VALUES (\(bytes(digest)), '\(name)', false, false, \(size), \(bytes(blob.bytes))) ON CONFLICT DO NOTHING"
            )
          case .folder(let name, let child):
            sql.append(
              "INSERT INTO tree_entry VALUES (\(bytes(digest)), '\(name)', true, false, 0, \(bytes(child))) ON CONFLICT DO NOTHING"
            )
          }
        }
      }
      sql.append(
        """
        INSERT INTO version (app_id, number, environment, author, created_at, comment, origin, parent, tree,
          tree_digest, file_count, total_size)
        VALUES (1, \(index + 1), 'dev', 'ana', 1800000000, 'c', 'push', \(index == 0 ? "NULL" : "\(index)"),
          \(bytes(folders.last!.digest)), '\(TreeDigest(files: version).value)', \(version.count),
          \(version.reduce(0) { $0 + $1.size }))
        """)
    }
    sql.append("INSERT INTO head VALUES (1, 3, 1800000000)")
    let script = sql.map { $0 + ";\n" }.joined()
    let name = String(url.split(separator: "/").last!)
    let psql = Process()
    psql.executableURL = URL(fileURLWithPath: cluster.binaries + "/psql")
    psql.arguments = [
      "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", "\(cluster.port)", "-U", PostgresCluster.role, "-d", name,
      "-c", script,
    ]
    try psql.run()
    psql.waitUntilExit()
    #expect(psql.terminationStatus == 0)

    // A reader converts it: this confvault reads only folder records.
    let reader = try open(url, readOnly: true)
    let report = try await reader.check()
    #expect(report.isConsistent && report.versions == 3 && report.folders == 6, "\(report)")
    for (index, version) in versions.enumerated() {
      let stored = try await reader.files(app: "shop", number: index + 1)
      #expect(stored == version.sorted { EntryPath.byteOrder($0.path, $1.path) }, "version \(index + 1)")
    }
    let changes = try await reader.changedFiles(app: "shop", from: 1, to: 3)
    #expect(changes.map(\.path) == ["big/item-1.yaml", "big/item-2.yaml"])
    let deltas = try await reader.rawSQL("SELECT count(*)::text FROM tree_node WHERE base IS NOT NULL")
    #expect(deltas == ["4"], "versions 2 and 3 store their changed folders as deltas")
    let old = try await reader.rawSQL("SELECT (to_regclass('tree_entry_v1') IS NULL)::text")
    #expect(old == ["true"])
    let migrations = try await reader.rawSQL("SELECT name FROM confvault_migration ORDER BY name")
    #expect(migrations == Migrations.all.map(\.name))
  }

  @Test("a database a newer confvault migrated is refused, read-only or not, and left as it is")
  func newerSchemaRefused() async throws {
    let url = try PostgresCluster.shared().newDatabaseURL()
    let store = try open(url, create: true)
    _ = try await store.apps()
    _ = try await store.rawSQL("INSERT INTO confvault_migration (name) VALUES ('v99-from-the-future')")
    for readOnly in [false, true] {
      let refused = await #expect(throws: OperationError.self) { try await open(url, readOnly: readOnly).apps() }
      #expect(refused?.hint == .upgrade && refused?.message.contains("v99-from-the-future") == true)
    }
    #expect(try await store.rawSQL("SELECT count(*)::text FROM confvault_migration") == ["\(Migrations.all.count + 1)"])
  }

  @Test("an empty database is no store unless one is created; a read-only store changes nothing")
  func emptyAndReadOnly() async throws {
    let url = try PostgresCluster.shared().newDatabaseURL()
    let missing = await #expect(throws: OperationError.self) { try await open(url).apps() }
    #expect(missing?.kind == .inputUnreadable && missing?.hint == .createStore)
    let reader = try open(url, readOnly: true)
    let created = try open(url, create: true)
    try await StoreUnderTest(store: created, folder: try ScratchFolder()).createShop()
    #expect(try await reader.apps().map(\.name) == ["shop"])
    let refused = await #expect(throws: OperationError.self) {
      try await StoreUnderTest(store: reader, folder: try ScratchFolder()).createShop()
    }
    #expect(refused?.kind == .permissionDenied)
  }

  @Test("a server nobody listens on is a temporary failure that names the store and says it cannot be reached")
  func unreachable() async throws {
    let location = try DatabaseLocation(
      url: "postgres://nobody@127.0.0.1:1/none", environment: [:], defaultUser: "nobody")
    let store = try PostgresStore(location: location, connectTimeout: .seconds(2), logger: logger)
    let error = await #expect(throws: OperationError.self) { try await store.apps() }
    #expect(error?.kind == .temporaryFailure, "\(String(describing: error))")
    // No bound on the time: other suites' blocking subprocess waits can starve this one's timers on a
    // 2-core machine. How long it takes is the benchmarks' business; what it says is this test's.
    let message = "\(error.map { "\($0)" } ?? "")"
    #expect(
      message.contains("postgres://nobody@127.0.0.1:1/none") && message.contains("cannot be reached"), "\(message)")
    await store.close()
  }

  @Test("a URL names user, host, port, database and TLS; a password in it is refused, and never shown")
  func urls() throws {
    let location = try DatabaseLocation(
      url: "postgres://ana@db.example:6543/vault?sslmode=require", environment: ["PGPASSWORD": "s3cret"],
      defaultUser: "root")
    #expect(location.user == "ana" && location.host == "db.example" && location.port == 6543)
    #expect(location.database == "vault" && location.tlsMode == .require && location.password == "s3cret")
    #expect("\(location)" == "postgres://ana@db.example:6543/vault?sslmode=require")
    let defaults = try DatabaseLocation(url: "postgresql://", environment: [:], defaultUser: "root")
    #expect(
      defaults.user == "root" && defaults.host == "localhost" && defaults.port == 5432 && defaults.database == "root")
    let refused = #expect(throws: OperationError.self) {
      try DatabaseLocation(url: "postgres://ana:hunter2@db/vault", environment: [:], defaultUser: "root")
    }
    #expect(refused?.kind == .usage && refused?.message.contains("hunter2") == false)
    #expect(throws: OperationError.self) {
      try DatabaseLocation(url: "postgres://ana@db/vault?sslmode=sometimes", environment: [:], defaultUser: "root")
    }
  }

  @Test("a password comes from a ~/.pgpass-style file, first matching line, escapes and wildcards as libpq")
  func passwordFile() throws {
    let scratch = try ScratchFolder()
    let path = scratch.path + "/pgpass"
    try """
    # comment
    other:5432:*:ana:wrong
    db.example:*:vault:ana:pa\\:ss
    *:*:*:*:fallback
    """.write(toFile: path, atomically: true, encoding: .utf8)
    chmod(path, 0o600)
    let location = try DatabaseLocation(
      url: "postgres://ana@db.example/vault", environment: ["PGPASSFILE": path], defaultUser: "root")
    #expect(location.password == "pa:ss")
    let other = try DatabaseLocation(url: "postgres://bo@h/x", environment: ["PGPASSFILE": path], defaultUser: "root")
    #expect(other.password == "fallback")
    chmod(path, 0o644)
    let exposed = try DatabaseLocation(url: "postgres://bo@h/x", environment: ["PGPASSFILE": path], defaultUser: "root")
    #expect(exposed.password == nil, "a file others may read is ignored, as libpq does")
  }
}
