import Foundation
import Testing

/// A store an older confvault wrote is converted to the current layout when it is first opened by a
/// user who may write it, and reads exactly as it did: `Fixtures/store-v3` has folders as a row per
/// entry (migrations v1 to v3), `Fixtures/store-v4` folder records keyed by their digest and blobs
/// without a base (v1 to v4), `Fixtures/store-v5` blob deltas and a unique index of whole folder
/// digests (v1 to v5). All are made by `Fixtures/make-old-store.sh`, so they hold the same history.
@Suite struct StoreMigrationTests {
  /// The fixture's store, unpacked into a new folder.
  private func oldStore(_ fixture: String, in folder: TemporaryFolder) throws -> String {
    let store = folder.file("store")
    try FileManager.default.createDirectory(atPath: store, withIntermediateDirectories: true)
    let unpacked = try Harness.shell(
      "gzip -dc '\(Harness.fixtures)/\(fixture)/confvault.sqlite.gz' > '\(store)/confvault.sqlite'")
    #expect(unpacked.status == 0, "\(unpacked)")
    return store
  }

  /// The column names of each table of the store's database, from SQLite's `PRAGMA table_info`.
  private func columns(of store: String) throws -> [String: [String]] {
    let listed = try Harness.shell(
      "python3 -c \"import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); "
        + "[print(t, *(r[1] for r in c.execute('PRAGMA table_info(' + t + ')'))) for (t,) in "
        + "c.execute(\\\"SELECT name FROM sqlite_master WHERE type='table'\\\").fetchall()]\" "
        + "'\(store)/confvault.sqlite'")
    #expect(listed.status == 0, "\(listed)")
    return Dictionary(
      uniqueKeysWithValues: listed.stdout.split(separator: "\n").map { line in
        let words = line.split(separator: " ").map(String.init)
        return (words[0], Array(words.dropFirst()))
      })
  }

  private func json(_ text: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(text.utf8))
  }

  /// The fields of each version both confvaults print, for comparison.
  private func versionFields(_ text: String) throws -> [[String: String]] {
    let keys = [
      "number", "environment", "author", "comment", "origin", "parent", "backup", "syncedAt", "treeDigest",
      "fileCount", "totalSize",
    ]
    return try (json(text) as? [[String: Any]] ?? []).map { version in
      Dictionary(uniqueKeysWithValues: keys.map { ($0, "\(version[$0] ?? "absent")") })
    }
  }

  @Test(
    "an old layout is converted when first opened: check passes, versions, diffs and audit read as before",
    arguments: ["store-v3", "store-v4", "store-v5"])
  func convertsOldLayout(fixture: String) throws {
    let folder = try TemporaryFolder()
    let store = try oldStore(fixture, in: folder)
    let environment = ["CONFVAULT_STORE": store, "CONFVAULT_APP": "shop", "CONFVAULT_AUTHOR": "ana"]
    let expected = Harness.fixtures + "/\(fixture)/"

    // The first command converts the store, a checkout (which only reads) included.
    let before = try Harness.confvault(
      ["checkout", "--env", "dev", "--to", folder.file("dev")], environment: environment)
    #expect(before.status == 0, "\(before)")
    try folder.write("dev/catalog/item-2.yaml", "id: 2\nname: item-2\nprice: 1000\n")
    let push = try Harness.confvault(
      ["push", folder.file("dev"), "--env", "dev", "-m", "after"], environment: environment)
    #expect(push.status == 0, "\(push)")
    let tables = try Harness.shell(
      "python3 -c \"import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); "
        + "print(sorted(r[0] for r in c.execute(\\\"SELECT name FROM sqlite_master WHERE type='table'\\\")))\" "
        + "'\(store)/confvault.sqlite'")
    #expect(
      tables.stdout.contains("'tree_node'") && !tables.stdout.contains("tree_entry")
        && !tables.stdout.contains("tree_blob") && !tables.stdout.contains("_v"), "\(tables)")
    // Folder records are rows of a table with a rowid, found by their digest; a blob may be a delta
    // against its base, names the row of its first chunk, and is marked when a folder names it
    // (migration v5).
    let layout = try columns(of: store)
    #expect(layout["tree_node"]?.contains("id") == true, "tree_node has the v5 layout: \(layout)")
    for column in ["base", "first_chunk", "named"] {
      #expect(layout["blob"]?.contains(column) == true, "blob has the v5 layout: \(layout)")
    }
    #expect(layout["blob_chunk"]?.contains("blob") == false, "chunks are found by their rows: \(layout)")
    // Folder digests are indexed by their first 8 bytes, a version names its root folder's row, and
    // tree digests are 32 bytes (migration v6).
    let lean = try Harness.shell(
      "python3 -c \"import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); "
        + "print(c.execute(\\\"SELECT sql FROM sqlite_master WHERE name = 'tree_node_by_digest'\\\").fetchall(), "
        + "c.execute(\\\"SELECT DISTINCT typeof(tree_digest), length(tree_digest), typeof(tree) FROM version\\\").fetchall(), "
        + "c.execute(\\\"SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'sqlite_autoindex_tree_node%'\\\").fetchall())\" "
        + "'\(store)/confvault.sqlite'")
    #expect(
      lean.stdout.contains("substr(digest, 1, 8)") && lean.stdout.contains("[('blob', 32, 'integer')]")
        && lean.stdout.contains("[(0,)]"), "\(lean)")

    // A delta names its base by the row of the base's one chunk, a blob stored whole (migration v7).
    let bases = try Harness.shell(
      "python3 -c \"import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); "
        + "print('deltas', c.execute('SELECT COUNT(*) FROM blob WHERE base IS NOT NULL').fetchone()[0], "
        + "'by row', c.execute(\\\"SELECT COUNT(*) FROM blob WHERE typeof(base) = 'integer'\\\").fetchone()[0], "
        + "'whole', c.execute('SELECT COUNT(*) FROM blob d JOIN blob w ON w.first_chunk = d.base "
        + "AND w.base IS NULL AND w.chunk_count = 1').fetchone()[0])\" "
        + "'\(store)/confvault.sqlite'")
    let counts = bases.stdout.split(separator: " ").compactMap {
      Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
    }
    #expect(counts.count == 3 && counts[0] > 0 && Set(counts).count == 1, "\(bases)")

    let check = try Harness.confvault(["check"], environment: environment)
    #expect(check.status == 0 && check.stdout.hasPrefix("OK: 44 versions"), "\(check)")
    let versions = try Harness.confvault(["versions", "--limit", "100", "--json"], environment: environment)
    let old = try versionFields(String(contentsOfFile: expected + "versions.json", encoding: .utf8))
    let now = try versionFields(versions.stdout)
    #expect(old.count == 43 && Array(now.dropFirst()) == old, "every old version reads as before")
    #expect(now.first?["parent"] == "43" && now.first?["fileCount"] == old.first?["fileCount"])

    let diff = try Harness.confvault(["diff", "1", "41", "--json"], environment: environment)
    #expect(
      try json(diff.stdout) as? NSDictionary
        == json(String(contentsOfFile: expected + "diff-1-41.json", encoding: .utf8)) as? NSDictionary)
    let audit = try Harness.confvault(["audit", "--limit", "100", "--json"], environment: environment)
    let oldAudit = try json(String(contentsOfFile: expected + "audit.json", encoding: .utf8)) as? [NSDictionary] ?? []
    let newAudit = try json(audit.stdout) as? [NSDictionary] ?? []
    #expect(
      oldAudit.count == 49 && Array(newAudit.prefix(oldAudit.count)) == oldAudit, "the audit log is kept as it was")

    // Every version exports the tree it had: the export's tree digest is the one the old confvault listed.
    for number in ["1", "20", "43"] {
      let exported = try Harness.confvault(
        ["export", "--version", number, "-o", folder.file("v\(number).tar"), "--json"], environment: environment)
      let digest = (try json(exported.stdout) as? [String: Any])?["treeDigest"] as? String
      #expect(digest == old.first { $0["number"] == number }?["treeDigest"], "\(exported)")
    }
  }
}
