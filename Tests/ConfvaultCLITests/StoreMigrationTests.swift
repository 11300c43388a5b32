import Foundation
import Testing

/// A store an older confvault wrote (folders as a row per entry, `Fixtures/store-v3`) is converted
/// to folder records when it is first opened by a user who may write it, and reads exactly as it did.
@Suite struct StoreMigrationTests {
  /// The fixture's store, unpacked into a new folder.
  private func oldStore(in folder: TemporaryFolder) throws -> String {
    let store = folder.file("store")
    try FileManager.default.createDirectory(atPath: store, withIntermediateDirectories: true)
    let unpacked = try Harness.shell(
      "gzip -dc '\(Harness.fixtures)/store-v3/confvault.sqlite.gz' > '\(store)/confvault.sqlite'")
    #expect(unpacked.status == 0, "\(unpacked)")
    return store
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

  @Test("the old layout is converted when first opened: check passes, versions, diffs and audit read as before")
  func convertsOldLayout() throws {
    let folder = try TemporaryFolder()
    let store = try oldStore(in: folder)
    let environment = ["CONFVAULT_STORE": store, "CONFVAULT_APP": "shop", "CONFVAULT_AUTHOR": "ana"]
    let expected = Harness.fixtures + "/store-v3/"

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
    #expect(tables.stdout.contains("'tree_blob'") && !tables.stdout.contains("tree_entry"), "\(tables)")

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
