import ConfvaultTestSupport
import Foundation
import Testing

/// A fresh store with the app `inventory` (development, staging, production), for one test.
final class StoreFixture {
  let folder: TemporaryFolder
  let kind: StoreKind
  let environment: [String: String]

  /// - Parameter database: for `.postgres`, the URL of an empty database to use rather than a new one
  ///   of the shared cluster.
  init(app: String = "inventory", kind: StoreKind = .sqlite, database: String? = nil) throws {
    folder = try TemporaryFolder()
    self.kind = kind
    var environment = [
      "CONFVAULT_STORE": try database ?? kind.newStore(beside: folder), "CONFVAULT_AUTHOR": "ana",
      "CONFVAULT_LOCK_TIMEOUT": "60",
    ]
    // A PostgreSQL store stages imports below TMPDIR: one folder per fixture, so that a test sees only
    // what its own commands left there.
    if kind == .postgres { environment["TMPDIR"] = folder.path }
    self.environment = environment
    let created = try run(["init", "--app", app])
    #expect(created.status == 0, "\(created)")
  }

  /// Where the store stages an import while it reads the archive.
  var stagingFolder: String {
    switch kind {
    case .sqlite: environment["CONFVAULT_STORE"]! + "/staging"
    case .postgres: folder.path + "/confvault-staging-\(getuid())"
    }
  }

  @discardableResult
  func run(_ arguments: [String], input: String? = nil) throws -> Outcome {
    try Harness.confvault(arguments, input: input, environment: environment)
  }

  /// Runs a command that must succeed, and returns what it printed.
  @discardableResult
  func ok(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
    let outcome = try run(arguments)
    #expect(outcome.status == 0, "\(arguments): \(outcome)", sourceLocation: sourceLocation)
    return outcome.stdout
  }

  func json(_ arguments: [String]) throws -> Any {
    try JSONSerialization.jsonObject(with: try run(arguments + ["--json"]).stdoutData)
  }

  func versions() throws -> [[String: Any]] {
    try json(["versions", "--app", "inventory"]) as? [[String: Any]] ?? []
  }

  func heads() throws -> [String: Int] {
    let environments = try json(["env", "list", "--app", "inventory"]) as? [[String: Any]] ?? []
    var heads: [String: Int] = [:]
    for environment in environments {
      if let head = environment["head"] as? Int { heads[environment["name"] as! String] = head }
    }
    return heads
  }

  /// Everything a user can see of the store, to compare before and after a refused change.
  func snapshot() throws -> String {
    try ["versions --app inventory", "env list --app inventory", "audit --app inventory", "check"]
      .map { try run($0.split(separator: " ").map(String.init) + ["--json"]).stdout }.joined(separator: "\n")
  }

  /// Changes the store's database behind confvault's back, as damage or a crash would: `statements`
  /// run in Python with `c` (a sqlite3 connection) and `hashlib` at hand; what they print is returned.
  @discardableResult
  func tamper(_ statements: String) throws -> String {
    precondition(kind == .sqlite, "tamper works on an SQLite store; tamperSQL on a PostgreSQL one")
    let database = environment["CONFVAULT_STORE"]! + "/confvault.sqlite"
    let outcome = try Harness.run(
      "/usr/bin/env",
      [
        "python3", "-c", "import sqlite3,sys,hashlib; c=sqlite3.connect(sys.argv[1]); \(statements); c.commit()",
        database,
      ])
    #expect(outcome.status == 0, "\(outcome)")
    return outcome.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
  }

  /// Runs `sql` with `psql` on a PostgreSQL store's database, behind confvault's back; what it printed
  /// (unaligned, tuples only) is returned.
  @discardableResult
  func tamperSQL(_ sql: String) throws -> String {
    precondition(kind == .postgres, "tamperSQL works on a PostgreSQL store; tamper on an SQLite one")
    let outcome = try Harness.run(
      try PostgresCluster.shared().binaries + "/psql",
      ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", environment["CONFVAULT_STORE"]!, "-c", sql])
    #expect(outcome.status == 0, "\(outcome)")
    return outcome.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
  }

  /// A copy of a sample environment's folder that the test may change.
  func copy(_ sample: String, to name: String) throws -> String {
    let target = folder.file(name)
    #expect(try Harness.shell("cp -r '\(Harness.samples)/\(sample)' '\(target)'").status == 0)
    return target
  }
}

@Suite struct StoreCommandTests {
  @Test("push makes numbered versions, skips an unchanged tree, and prints what changed", arguments: StoreKind.allCases)
  func push(kind: StoreKind) throws {
    let store = try StoreFixture(kind: kind)
    let first = try store.ok([
      "push", "--app", "inventory", "--env", "development", Harness.samples + "/development", "-m", "first",
    ])
    #expect(first.contains("pushed v1 to inventory/development"))
    let again = try store.ok(["push", "--app", "inventory", "--env", "development", Harness.samples + "/development"])
    #expect(again.contains("unchanged, head is v1"))
    let changed = try store.copy("development", to: "dev")
    try Data("level: warn\n".utf8).write(to: URL(fileURLWithPath: changed + "/settings/logging.yaml"))
    try FileManager.default.removeItem(atPath: changed + "/roles/clerk.yaml")
    chmod(changed + "/README.md", 0o755)
    let second = try store.ok([
      "push", "--app", "inventory", "--env", "development", changed, "--backup", "-m", "second",
    ])
    #expect(second.contains("pushed v2"))
    #expect(second.contains("A settings/logging.yaml"))
    #expect(second.contains("D roles/clerk.yaml"))
    #expect(second.contains("m README.md  (mode 0644 -> 0755)"))
    let versions = try store.versions()
    #expect(versions.map { $0["number"] as? Int } == [2, 1])
    #expect(versions[0]["backup"] as? Bool == true && versions[1]["backup"] as? Bool == false)
    #expect(versions[0]["parent"] as? Int == 1 && versions[0]["comment"] as? String == "second")
    #expect(versions[0]["author"] as? String == "ana")
    #expect(try store.heads() == ["development": 2])
    try Data("level: info\n".utf8).write(to: URL(fileURLWithPath: changed + "/settings/logging.yaml"))
    try store.ok(["push", "--app", "inventory", "--env", "development", changed, "--author", "bob"])
    #expect(try store.versions()[0]["author"] as? String == "bob", "--author wins over CONFVAULT_AUTHOR")
  }

  @Test("check reports unreferenced blobs without failing, and gc removes them", arguments: StoreKind.allCases)
  func garbage(kind: StoreKind) throws {
    let store = try StoreFixture(kind: kind)
    try store.ok(["push", "--app", "inventory", "--env", "staging", Harness.samples + "/staging"])
    // A blob stored long ago that no version refers to, as an import that died before its change leaves.
    switch kind {
    case .sqlite:
      try store.tamper(
        "d=b'left behind'; k=hashlib.sha256(d).digest(); i=c.execute('INSERT INTO blob_chunk (zstd, data) VALUES (0,?)', (d,)).lastrowid; c.execute('INSERT INTO blob (sha256, size, chunk_count, first_chunk, stored_at) VALUES (?,?,1,?,0)', (k, len(d), i))"
      )
    case .postgres:
      try store.tamperSQL(
        "INSERT INTO blob (sha256, size, stored_size, chunk_count, stored_at) VALUES (sha256('left behind'), 11, 11, 1, 0); INSERT INTO blob_chunk (blob, seq, zstd, data) VALUES (sha256('left behind'), 0, false, 'left behind')"
      )
    }
    let checked = try store.ok(["check"])
    #expect(checked.contains("OK: 1 versions") && checked.contains("1 unreferenced"), "\(checked)")
    #expect(try store.ok(["gc"]).contains("removed 1 unreferenced blobs"))
    let after = try store.json(["check"]) as? [String: Any]
    #expect(after?["unreferencedBlobs"] as? Int == 0 && (after?["problems"] as? [Any])?.isEmpty == true)
    try store.ok(["checkout", "--app", "inventory", "--env", "staging", "--to", store.folder.file("out")])
    #expect(try folderFingerprint(store.folder.file("out")) == folderFingerprint(Harness.samples + "/staging"))
  }

  @Test("versions: statuses, colours' meaning, JSON fields, paging", arguments: StoreKind.allCases)
  func versionsList(kind: StoreKind) throws {
    let store = try StoreFixture(kind: kind)
    let folder = try store.copy("development", to: "dev")
    for index in 1...4 {
      try Data("n: \(index)\n".utf8).write(to: URL(fileURLWithPath: folder + "/counter.yaml"))
      try store.ok(["push", "--app", "inventory", "--env", "development", folder, "-m", "change \(index)"])
    }
    try store.ok(["sync", "--yes", "--app", "inventory", "2"])
    try store.ok(["sync", "--yes", "--app", "inventory", "3"])
    let rows = try store.versions()
    let status = Dictionary(uniqueKeysWithValues: rows.map { ($0["number"] as! Int, $0["status"] as! String) })
    #expect(status == [4: "not-synced", 3: "current-production", 2: "synced", 1: "not-synced"])
    let keys = Set(rows[0].keys)
    #expect(
      keys == [
        "number", "environment", "author", "createdAt", "syncedAt", "comment", "origin", "backup", "status",
        "parent", "restoredFrom", "treeDigest", "fileCount", "totalSize",
      ])
    #expect(rows[0]["syncedAt"] is NSNull && rows[1]["syncedAt"] is String)
    let page = try store.json(["versions", "--app", "inventory", "--limit", "2", "--before", "4"]) as? [[String: Any]]
    #expect(page?.map { $0["number"] as? Int } == [3, 2])
    let text = try store.ok(["versions", "--app", "inventory"])
    #expect(text.contains("Number") && text.contains("Sync date") && text.contains("Prod"))
    #expect(!text.contains("\u{1B}["), "no colour when standard output is not a terminal")
    let coloured = try Harness.shell(
      "env -u NO_COLOR CONFVAULT_STORE='\(store.environment["CONFVAULT_STORE"]!)' script -qec \"'\(Harness.binary)' versions --app inventory\" /dev/null"
    )
    #expect(coloured.status == 0, "script(1) runs the command on a terminal: \(coloured)")
    #expect(coloured.stdout.contains("\u{1B}[32mv3"), "green: the current production version")
    #expect(coloured.stdout.contains("\u{1B}[33mv2"), "yellow: synced once")
    #expect(coloured.stdout.contains("\u{1B}[34mv4"), "blue: never synced")
  }

  @Test("sync pins the version and the head it replaces; restore makes a new version", arguments: StoreKind.allCases)
  func syncAndRestore(kind: StoreKind) throws {
    let store = try StoreFixture(kind: kind)
    try store.ok(["push", "--app", "inventory", "--env", "development", Harness.samples + "/development"])
    try store.ok(["push", "--app", "inventory", "--env", "staging", Harness.samples + "/staging"])
    let synced = try store.ok(["sync", "--yes", "--app", "inventory", "1"])
    #expect(synced.contains("synced v1 to inventory/production"))
    try store.ok(["sync", "--yes", "--app", "inventory", "2"])
    var versions = try store.versions()
    #expect(versions.first { $0["number"] as? Int == 1 }?["backup"] as? Bool == true, "replaced head pinned")
    #expect(versions.first { $0["number"] as? Int == 2 }?["status"] as? String == "current-production")
    #expect(try store.heads() == ["development": 1, "staging": 2, "production": 2])

    let restored = try store.ok(["restore", "--yes", "--app", "inventory", "1", "--env", "production"])
    #expect(restored.contains("restored v1 as v3"))
    versions = try store.versions()
    let three = try #require(versions.first { $0["number"] as? Int == 3 })
    #expect(three["origin"] as? String == "restore" && three["restoredFrom"] as? Int == 1)
    #expect(three["treeDigest"] as? String == versions.first { $0["number"] as? Int == 1 }?["treeDigest"] as? String)
    #expect(three["status"] as? String == "current-production")
    #expect(versions.first { $0["number"] as? Int == 2 }?["status"] as? String == "synced")
    let sameAgain = try store.ok(["restore", "--yes", "--app", "inventory", "1", "--env", "production"])
    #expect(sameAgain.contains("unchanged, head is v3"))

    try store.ok(["push", "--app", "inventory", "--env", "development", Harness.samples + "/staging"])
    let promoted = try store.ok(["sync", "--yes", "--app", "inventory", "4", "--to", "staging"])
    #expect(promoted.contains("synced v4 to inventory/staging; previous head v2 pinned as a backup"))
    let four = try #require(try store.versions().first { $0["number"] as? Int == 4 })
    #expect(four["backup"] as? Bool == true, "a synced version is pinned wherever it goes")
    #expect(four["syncedAt"] is NSNull, "synced-at records production only")
    #expect(try store.heads()["staging"] == 4)
  }

  @Test(
    "export is deterministic, names its file, and its archive imports back with the same tree digest",
    arguments: StoreKind.allCases)
  func exportImport(kind: StoreKind) throws {
    let store = try StoreFixture(kind: kind)
    let work = store.folder
    try store.ok(["push", "--yes", "--app", "inventory", "--env", "production", Harness.samples + "/production"])
    try store.ok(["export", "--app", "inventory", "--env", "production", "-o", work.file("a.tar.gz")])
    try store.ok(["export", "--app", "inventory", "--version", "1", "-o", work.file("b.tar.gz")])
    #expect(try work.bytes("a.tar.gz") == work.bytes("b.tar.gz"), "the same version gives the same bytes")
    let named = try Harness.confvault(
      ["export", "--app", "inventory", "--env", "production", "--compression", "zstd"], in: work.path,
      environment: store.environment)
    #expect(named.status == 0, "\(named)")
    #expect(work.exists("inventory-production-v1.tar.zst"))
    let manifest = try #require(
      try JSONSerialization.jsonObject(
        with: Harness.confvault(["inspect", work.file("a.tar.gz"), "--json"]).stdoutData)
        as? [String: Any])
    let version = try #require((manifest["manifest"] as? [String: Any])?["version"] as? [String: Any])
    #expect(
      version["number"] as? Int == 1 && version["author"] as? String == "ana" && version["origin"] as? String == "push")

    let imported = try store.ok(["import", work.file("a.tar.gz"), "--app", "inventory", "--env", "staging"])
    #expect(imported.contains("imported as v2 to inventory/staging"))
    let versions = try store.versions()
    #expect(versions[0]["origin"] as? String == "import")
    #expect(versions[0]["treeDigest"] as? String == versions[1]["treeDigest"] as? String)
    let shown = try store.json(["show", "--app", "inventory", "2"]) as? [String: Any]
    let origin = (shown?["version"] as? [String: Any])?["importedFrom"] as? [String: Any]
    #expect(origin?["archiveSHA256"] as? String == (manifest["archiveSHA256"] as? String))
    #expect(origin?["environment"] as? String == "production" && origin?["version"] as? Int == 1)
    try store.ok(["export", "--app", "inventory", "--version", "2", "-o", work.file("c.tar.gz")])
    let verified = try Harness.confvault(["verify", work.file("c.tar.gz")])
    #expect(verified.stdout.contains(versions[1]["treeDigest"] as! String), "export of an import keeps the tree digest")
    let again = try store.ok(["import", work.file("a.tar.gz"), "--app", "inventory", "--env", "staging"])
    #expect(again.contains("unchanged, head is v2"))
    let audit = try store.json(["audit", "--app", "inventory"]) as? [[String: Any]] ?? []
    #expect(
      audit.contains {
        $0["action"] as? String == "import" && $0["archiveSHA256"] as? String == manifest["archiveSHA256"] as? String
      })
    #expect(audit.filter { $0["action"] as? String == "export" }.count == 4)
  }

  @Test(
    "import: dry run writes nothing, other apps need --allow-other-app, plain tars need --plain",
    arguments: StoreKind.allCases)
  func importModes(kind: StoreKind) throws {
    let store = try StoreFixture(kind: kind)
    let work = store.folder
    try store.ok(["push", "--app", "inventory", "--env", "staging", Harness.samples + "/staging"])
    try Harness.confvault(["pack", Harness.samples + "/production", "-o", work.file("p.tar.gz"), "--app", "inventory"])
    let before = try store.snapshot()
    let dry = try store.ok(["import", work.file("p.tar.gz"), "--app", "inventory", "--env", "staging", "--dry-run"])
    #expect(dry.contains("dry run: importing would make a new version"))
    #expect(dry.contains("M settings/app.yaml"))
    #expect(try store.snapshot() == before, "a dry run changes nothing")

    try Harness.confvault([
      "pack", Harness.samples + "/production", "-o", work.file("other.tar.gz"), "--app", "billing",
    ])
    let other = try store.run(["import", work.file("other.tar.gz"), "--app", "inventory", "--env", "staging"])
    #expect(other.status == 65)
    #expect(other.stderr.contains("the archive is of app 'billing', not 'inventory'"))
    #expect(try store.snapshot() == before)
    try store.ok(["import", work.file("other.tar.gz"), "--app", "inventory", "--env", "staging", "--allow-other-app"])

    #expect(try Harness.shell("tar -czf '\(work.file("hand.tgz"))' -C '\(Harness.samples)' development").status == 0)
    let plain = try store.ok(["import", work.file("hand.tgz"), "--app", "inventory", "--env", "development", "--plain"])
    #expect(plain.contains("imported as v3"))
    let versions = try store.versions()
    let pushed = try store.json(["show", "--app", "inventory", "3"]) as? [String: Any]
    #expect((pushed?["version"] as? [String: Any])?["fileCount"] as? Int == versions[0]["fileCount"] as? Int)
    let fromStdin = try Harness.confvault(
      ["import", "-", "--app", "inventory", "--env", "development"], input: "@" + work.file("p.tar.gz"),
      environment: store.environment)
    #expect(fromStdin.status == 0 && fromStdin.stdout.contains("imported as v4"), "\(fromStdin)")
  }

  @Test("every hostile archive is refused by import with the store exactly as before", arguments: StoreKind.allCases)
  func hostileImports(kind: StoreKind) throws {
    let store = try StoreFixture(kind: kind)
    try store.ok(["push", "--app", "inventory", "--env", "staging", Harness.samples + "/staging"])
    let before = try store.snapshot()
    for hostile in HostileArchiveTests.cases {
      let outcome = try store.run([
        "import", HostileArchiveTests.folder + "/\(hostile.name).tar.gz", "--app", "inventory", "--env", "staging",
        "--allow-other-app",
      ])
      #expect(outcome.status == 65, "\(hostile.name): \(outcome)")
      #expect(outcome.stderr.contains(hostile.rule), "\(hostile.name): \(outcome.stderr)")
      #expect(try store.snapshot() == before, "\(hostile.name) changed the store")
    }
  }

  @Test(
    "diff shows key paths for JSON and YAML, unified lines for text, sizes for binary", arguments: StoreKind.allCases)
  func diff(kind: StoreKind) throws {
    let store = try StoreFixture(kind: kind)
    let folder = try store.copy("production", to: "prod")
    try Data([0, 1, 2, 3]).write(to: URL(fileURLWithPath: folder + "/logo.bin"))
    try store.ok(["push", "--yes", "--app", "inventory", "--env", "production", folder])
    let customer = folder + "/entities/customer.json"
    let text = try String(contentsOfFile: customer, encoding: .utf8)
    try text.replacingOccurrences(
      of: "\"type\": \"text\",\n      \"unique\"", with: "\"type\": \"email\",\n      \"unique\""
    )
    .write(toFile: customer, atomically: true, encoding: .utf8)
    try String(contentsOfFile: folder + "/settings/app.yaml", encoding: .utf8)
      .replacingOccurrences(of: "currency: EUR", with: "currency: USD")
      .write(toFile: folder + "/settings/app.yaml", atomically: true, encoding: .utf8)
    try String(contentsOfFile: folder + "/connections/smtp.toml", encoding: .utf8)
      .replacingOccurrences(of: "port = 587", with: "port = 2525")
      .write(toFile: folder + "/connections/smtp.toml", atomically: true, encoding: .utf8)
    try Data([0, 1, 2, 3, 4, 5]).write(to: URL(fileURLWithPath: folder + "/logo.bin"))
    try store.ok(["push", "--yes", "--app", "inventory", "--env", "production", folder])

    let diff = try store.ok(["diff", "--app", "inventory", "2"])
    #expect(diff.contains("entities/customer.json  fields.email.type: \"text\" -> \"email\""), "\(diff)")
    #expect(diff.contains("settings/app.yaml  currency: \"EUR\" -> \"USD\""))
    #expect(diff.contains("-port = 587") && diff.contains("+port = 2525") && diff.contains("@@ -"))
    #expect(diff.contains("binary or large: 4 B -> 6 B"))
    #expect(diff.contains("4 files changed: 0 added, 0 removed, 4 modified"))
    let stat = try store.ok(["diff", "--app", "inventory", "1", "2", "--stat"])
    #expect(stat.contains("M entities/customer.json") && !stat.contains("fields.email"))
    let json = try store.json(["diff", "--app", "inventory", "2"]) as? [String: Any]
    let files = json?["files"] as? [[String: Any]] ?? []
    #expect(files.count == 4 && json?["from"] as? Int == 1 && json?["to"] as? Int == 2)

    try store.ok(["push", "--app", "inventory", "--env", "staging", Harness.samples + "/staging"])
    let environments = try store.ok(["diff", "--app", "inventory", "--env", "staging", "--env", "production", "--stat"])
    #expect(environments.contains("(staging -> production)") && environments.contains("A logo.bin"))
  }

  @Test("a YAML alias bomb is compared as text, not expanded", .timeLimit(.minutes(1)), arguments: StoreKind.allCases)
  func yamlAliasBomb(kind: StoreKind) throws {
    let store = try StoreFixture(kind: kind)
    var lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for level in 1...9 {
      lines.append(
        "a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 9).joined(separator: ", ") + "]")
    }
    let folder = store.folder.file("bomb")
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    try (lines.joined(separator: "\n") + "\n").write(toFile: folder + "/bomb.yaml", atomically: true, encoding: .utf8)
    try store.ok(["push", "--app", "inventory", "--env", "staging", folder])
    try (lines.joined(separator: "\n") + "\nend: true\n").write(
      toFile: folder + "/bomb.yaml", atomically: true, encoding: .utf8)
    try store.ok(["push", "--app", "inventory", "--env", "staging", folder])
    let diff = try store.ok(["diff", "--app", "inventory", "2"])
    #expect(diff.contains("+end: true"), "\(diff)")
  }

  @Test("a folder with decomposed (NFD) names is pushed, backed up and checked out", arguments: StoreKind.allCases)
  func decomposedNames(kind: StoreKind) throws {
    let store = try StoreFixture(kind: kind)
    let folder = store.folder.file("nfd")
    try store.folder.write("nfd/caf\u{65}\u{301}.json", "{}\n")
    try store.ok(["push", "--yes", "--app", "inventory", "--env", "production", folder])
    let backup = try store.run(["backup", "--to", store.folder.file("backups")])
    #expect(backup.status == 0 && backup.stdout.contains("written  v1"), "\(backup)")
    #expect(try store.ok(["check"]).hasPrefix("OK"))
    try store.ok(["checkout", "--app", "inventory", "--env", "production", "--to", store.folder.file("out")])
    #expect(try folderFingerprint(store.folder.file("out")).count == 1)
  }

  @Test(
    "checkout writes the head into a new folder; env create and delete; errors name what exists",
    arguments: StoreKind.allCases)
  func checkoutAndEnvironments(kind: StoreKind) throws {
    let store = try StoreFixture(kind: kind)
    try store.ok(["push", "--yes", "--app", "inventory", "--env", "production", Harness.samples + "/production"])
    try store.ok(["checkout", "--app", "inventory", "--env", "production", "--to", store.folder.file("out")])
    #expect(try folderFingerprint(store.folder.file("out")) == folderFingerprint(Harness.samples + "/production"))
    let busy = try store.run([
      "checkout", "--app", "inventory", "--env", "production", "--to", store.folder.file("out"),
    ])
    #expect(busy.status == 73)

    try store.ok(["env", "create", "--app", "inventory", "qa"])
    #expect(try store.ok(["env", "list", "--app", "inventory"]).contains("qa  no version"))
    let second = try store.run(["env", "create", "--app", "inventory", "prod2", "--production"])
    #expect(second.status == 1 && second.stderr.contains("has a production environment already: 'production'"))
    let missing = try store.run(["push", "--app", "inventory", "--env", "prod", Harness.samples + "/production"])
    #expect(missing.status == 1)
    #expect(
      missing.stderr.contains(
        "no environment 'prod' in app 'inventory'; environments: development, staging, production, qa"))
    let noApp = try store.run(["versions", "--app", "billing"])
    #expect(noApp.status == 1 && noApp.stderr.contains("no app 'billing' in the store; apps: inventory"))
    let noVersion = try store.run(["show", "--app", "inventory", "9"])
    #expect(noVersion.status == 1 && noVersion.stderr.contains("versions are 1 to 1"))
    try store.ok(["env", "delete", "--app", "inventory", "qa"])
    let production = try store.run(["env", "delete", "--app", "inventory", "production"])
    #expect(production.status == 1)
    let noStore = try Harness.confvault(["versions", "--app", "inventory", "--store", store.folder.file("nowhere")])
    #expect(noStore.status == 66 && noStore.stderr.contains("confvault init"))
  }

  @Test("four processes pushing at once give four distinct versions and a passing check", arguments: StoreKind.allCases)
  func concurrentPushes(kind: StoreKind) throws {
    let store = try StoreFixture(kind: kind)
    var folders: [String] = []
    for index in 0..<4 {
      let folder = try store.copy("development", to: "dev\(index)")
      try Data("writer: \(index)\n".utf8).write(to: URL(fileURLWithPath: folder + "/writer.yaml"))
      folders.append(folder)
    }
    let processes = try folders.map { folder -> Process in
      let process = Process()
      process.executableURL = URL(fileURLWithPath: Harness.binary)
      process.arguments = ["push", "--app", "inventory", "--env", "development", folder, "--quiet"]
      process.environment = ProcessInfo.processInfo.environment.merging(store.environment) { _, new in new }
      try process.run()
      return process
    }
    for process in processes {
      process.waitUntilExit()
      #expect(process.terminationStatus == 0)
    }
    let versions = try store.versions()
    #expect(versions.map { $0["number"] as? Int }.sorted { ($0 ?? 0) < ($1 ?? 0) } == [1, 2, 3, 4])
    #expect(Set(versions.compactMap { $0["treeDigest"] as? String }).count == 4)
    let parents = versions.compactMap { $0["parent"] as? Int }.sorted()
    #expect(parents == [1, 2, 3], "each push saw the previous one's head: no head move was lost")
    #expect(try store.ok(["check"]).hasPrefix("OK: 4 versions"))
  }

  @Test(
    "a process killed in the middle of an import leaves a passing check and no new version",
    arguments: StoreKind.allCases)
  func killedImport(kind: StoreKind) throws {
    let store = try StoreFixture(kind: kind)
    try store.ok(["push", "--app", "inventory", "--env", "staging", Harness.samples + "/staging"])
    let archive = try bigArchive(store)
    let before = try store.snapshot()

    let process = Process()
    let input = Pipe()
    process.executableURL = URL(fileURLWithPath: Harness.binary)
    process.arguments = ["import", "-", "--yes", "--app", "inventory", "--env", "staging"]
    process.environment = ProcessInfo.processInfo.environment.merging(store.environment) { _, new in new }
    process.standardInput = input
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    // Half the archive: the import is staging what it read, waiting for the rest.
    input.fileHandleForWriting.write(archive.prefix(archive.count / 2))
    Thread.sleep(forTimeInterval: 1)
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
    #expect(process.terminationReason == .uncaughtSignal)

    #expect(try store.snapshot() == before, "no new version, check passes as before")
    #expect(try store.ok(["check"]).hasPrefix("OK: 1 versions"))
    let retried = try store.ok([
      "import", "--yes", store.folder.file("big.tar"), "--app", "inventory", "--env", "staging",
    ])
    #expect(retried.contains("imported as v2"), "the killed import left no lock behind")
  }

  /// Starts `confvault` with `arguments` on `store`, kills it with SIGKILL once `killNow` says so (asked
  /// every 2 ms, for at most 20 s), and returns whether it was still running then.
  private func killed(_ store: StoreFixture, _ arguments: [String], when killNow: () throws -> Bool) throws -> Bool {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: Harness.binary)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(store.environment) { _, new in new }
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    for _ in 0..<10_000 where process.isRunning {
      if try killNow() { break }
      Thread.sleep(forTimeInterval: 0.002)
    }
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
    return process.terminationReason == .uncaughtSignal
  }

  @Test(
    "a push killed at any point leaves a passing check, and the head as it was or a whole new version",
    arguments: StoreKind.allCases)
  func killedPush(kind: StoreKind) throws {
    let store = try StoreFixture(kind: kind)
    let big = store.folder.file("big")
    // 6 MB of new content each time, so that every push has everything to store.
    let rewrite =
      "mkdir -p '\(big)' && for i in $(seq 1 60); do head -c 100000 /dev/urandom > '\(big)'/file$i.bin; done"
    #expect(try Harness.shell(rewrite).status == 0)
    let push = ["push", "--yes", "--app", "inventory", "--env", "staging", big]
    let started = Date()
    try store.ok(push)
    let whole = Date().timeIntervalSince(started)
    var killedPushes = 0
    // From before the store is open to the last commit: the kill lands wherever it lands.
    for (round, share) in [0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 0.95].enumerated() {
      #expect(try Harness.shell(rewrite).status == 0)
      let before = try store.versions().count
      let started = Date()
      if try killed(store, push, when: { Date().timeIntervalSince(started) >= share * whole }) { killedPushes += 1 }
      #expect(try store.ok(["check"]).hasPrefix("OK"), "round \(round), killed at \(share) of a push")
      let after = try store.versions().count
      #expect(after == before || after == before + 1, "round \(round): \(before) versions, then \(after)")
      if after == before + 1 {
        // A version there is whole: it holds the folder as it was pushed.
        let out = store.folder.file("out-\(round)")
        try store.ok(["checkout", "--app", "inventory", "--env", "staging", "--to", out])
        #expect(try folderFingerprint(out) == folderFingerprint(big), "round \(round)")
      }
    }
    #expect(killedPushes >= 3, "\(killedPushes) pushes were killed while they ran")
    // Nothing a killed push left behind stops the next one.
    try store.ok(push + ["-m", "after the kills"])
    #expect(try store.ok(["check"]).hasPrefix("OK"))
  }

  @Test("a checkout killed part way leaves no folder at the target; the next checkout there completes")
  func killedCheckout() throws {
    let store = try StoreFixture()
    let big = store.folder.file("big")
    #expect(
      try Harness.run(
        "/usr/bin/env",
        [
          "python3", "-c",
          "import os, sys\nos.makedirs(sys.argv[1] + '/a')\nfor i in range(5000):\n"
            + "    open(f'{sys.argv[1]}/a/f{i}.bin', 'wb').write(os.urandom(1000))",
          big,
        ]
      ).status == 0)
    try store.ok(["push", "--yes", "--app", "inventory", "--env", "staging", big])
    let out = store.folder.file("out")
    var staged = 0
    let wasKilled = try killed(store, ["checkout", "--app", "inventory", "--env", "staging", "--to", out]) {
      let hidden = try store.folder.listing().first { $0.hasPrefix(".out.tmp-") }
      staged =
        hidden.flatMap { try? FileManager.default.contentsOfDirectory(atPath: store.folder.file($0) + "/a") }?
        .count ?? 0
      return staged >= 100
    }
    #expect(wasKilled && staged >= 100, "the checkout was killed while it wrote files (\(staged) written)")
    #expect(!store.folder.exists("out"), "nothing at the target: absent, not partial")

    try store.ok(["checkout", "--app", "inventory", "--env", "staging", "--to", out])
    // One `diff` of the 5,000 files: a fingerprint runs three processes a file.
    let compared = try Harness.run("/usr/bin/diff", ["-r", "-x", ".confvault", big, out])
    #expect(compared.status == 0, "\(compared)")
    #expect(
      try !store.folder.listing().contains { $0.hasPrefix(".out.tmp-") },
      "the killed checkout's hidden folder was removed")
  }

  @Test("a writer that cannot get the lock exits 75")
  func lockTimeout() throws {
    let store = try StoreFixture()
    let database = store.environment["CONFVAULT_STORE"]! + "/confvault.sqlite"
    let holder = Process()
    holder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    holder.arguments = [
      "python3", "-c",
      "import sqlite3,time,sys; c=sqlite3.connect(sys.argv[1], isolation_level=None); c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(8)",
      database,
    ]
    let ready = Pipe()
    holder.standardOutput = ready
    try holder.run()
    _ = ready.fileHandleForReading.availableData
    var environment = store.environment
    environment["CONFVAULT_LOCK_TIMEOUT"] = "1"
    let outcome = try Harness.confvault(
      ["push", "--app", "inventory", "--env", "staging", Harness.samples + "/staging"], environment: environment)
    holder.terminate()
    holder.waitUntilExit()
    #expect(outcome.status == 75, "\(outcome)")
    #expect(outcome.stderr.contains("busy with another confvault process; try again"))
  }

  /// Starts `confvault import -` on a pipe, feeds it the first half of `archive`, and waits until it
  /// has read that much (its staging folder holds a file).
  private func stalledImport(_ store: StoreFixture, archive: Data, environment: String) throws -> (Process, Pipe, Pipe)
  {
    let process = Process()
    let input = Pipe()
    let output = Pipe()
    process.executableURL = URL(fileURLWithPath: Harness.binary)
    process.arguments = ["import", "-", "--yes", "--app", "inventory", "--env", environment]
    process.environment = ProcessInfo.processInfo.environment.merging(store.environment) { _, new in new }
    process.standardInput = input
    process.standardOutput = output
    process.standardError = output
    try process.run()
    input.fileHandleForWriting.write(archive.prefix(archive.count / 2))
    let staging = store.stagingFolder
    let deadline = Date().addingTimeInterval(20)
    while Date() < deadline {
      let folders = (try? FileManager.default.contentsOfDirectory(atPath: staging)) ?? []
      if let folder = folders.first,
        let staged = try? FileManager.default.contentsOfDirectory(atPath: staging + "/" + folder), !staged.isEmpty
      {
        break
      }
      Thread.sleep(forTimeInterval: 0.05)
    }
    return (process, input, output)
  }

  private func bigArchive(_ store: StoreFixture) throws -> Data {
    let big = store.folder.file("big")
    #expect(
      try Harness.shell(
        "mkdir -p '\(big)' && for i in $(seq 1 300); do head -c 20000 /dev/urandom > '\(big)'/file$i.bin; done"
      ).status == 0)
    try Harness.confvault([
      "pack", big, "-o", store.folder.file("big.tar"), "--compression", "none", "--app", "inventory",
    ])
    return try store.folder.bytes("big.tar")
  }

  @Test(
    "an import stalled on a pipe does not block a push to another environment; released, it succeeds",
    arguments: StoreKind.allCases)
  func stalledImportBlocksNoWriter(kind: StoreKind) throws {
    let store = try StoreFixture(kind: kind)
    let archive = try bigArchive(store)
    let (process, input, output) = try stalledImport(store, archive: archive, environment: "staging")
    // A short lock time-out: a push that had to wait for the import would fail with 75.
    var environment = store.environment
    environment["CONFVAULT_LOCK_TIMEOUT"] = "2"
    let started = Date()
    let pushed = try Harness.confvault(
      ["push", "--app", "inventory", "--env", "development", Harness.samples + "/development"],
      environment: environment)
    let took = Date().timeIntervalSince(started)
    #expect(pushed.status == 0 && pushed.stdout.contains("pushed v1 to inventory/development"), "\(pushed)")
    // With a lock time-out of 2 s, a push that had waited for a lock held by the import would have
    // failed with 75; the time is loose, as other tests share the cores.
    #expect(took < 10, "the push did not wait for the stalled import (\(took) s)")
    #expect(process.isRunning, "the import is still waiting for the rest of its archive")
    input.fileHandleForWriting.write(archive.suffix(from: archive.count / 2))
    try input.fileHandleForWriting.close()
    process.waitUntilExit()
    let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    #expect(process.terminationStatus == 0 && printed.contains("imported as v2 to inventory/staging"), "\(printed)")
    #expect(try store.heads() == ["development": 1, "staging": 2])
    #expect(try store.ok(["check"]).hasPrefix("OK: 2 versions"))
  }

  @Test(
    "a stalled import whose environment's head moved meanwhile still succeeds on the new head",
    arguments: StoreKind.allCases)
  func stalledImportAfterHeadMoved(kind: StoreKind) throws {
    let store = try StoreFixture(kind: kind)
    let archive = try bigArchive(store)
    let (process, input, output) = try stalledImport(store, archive: archive, environment: "staging")
    try store.ok(["push", "--app", "inventory", "--env", "staging", Harness.samples + "/staging"])
    input.fileHandleForWriting.write(archive.suffix(from: archive.count / 2))
    try input.fileHandleForWriting.close()
    process.waitUntilExit()
    let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    #expect(process.terminationStatus == 0 && printed.contains("imported as v2"), "\(printed)")
    let versions = try store.versions()
    #expect(versions.first?["parent"] as? Int == 1, "decided on the head it found when it was applied")
  }

  @Test("a killed import leaves its staging folder, which check ignores and gc removes", arguments: StoreKind.allCases)
  func killedImportStaging(kind: StoreKind) throws {
    let store = try StoreFixture(kind: kind)
    let archive = try bigArchive(store)
    let (process, _, _) = try stalledImport(store, archive: archive, environment: "staging")
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
    let staging = store.stagingFolder
    #expect(
      try FileManager.default.contentsOfDirectory(atPath: staging).count == 1, "the staging folder outlived the kill")
    let checked = try store.ok(["check"])
    #expect(checked.hasPrefix("OK: 0 versions, 0 blobs") && !checked.contains("unreferenced"), "\(checked)")
    #expect(try store.ok(["gc"]).contains("and 1 abandoned import staging folders"))
    #expect(try FileManager.default.contentsOfDirectory(atPath: staging).isEmpty)
  }
}
