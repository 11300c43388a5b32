import Foundation
import Testing

/// `confvault backup list` and the names that sort by time, through the built binary.
@Suite struct BackupListTests {
  /// A store with heads in development (v1) and production (v2), backed up once into a folder.
  func backedUp() throws -> (StoreFixture, String) {
    let store = try StoreFixture()
    try store.ok(["push", "--app", "inventory", "--env", "development", Harness.samples + "/development"])
    try store.ok(["push", "--yes", "--app", "inventory", "--env", "production", Harness.samples + "/production"])
    let backups = store.folder.file("backups")
    try store.ok(["backup", "--to", backups])
    return (store, backups)
  }

  /// Pushes a change to production, making a new head.
  func pushChange(_ store: StoreFixture, _ number: Int) throws {
    let folder = try store.copy("production", to: "prod-\(number)")
    try Data("change: \(number)\n".utf8).write(to: URL(fileURLWithPath: folder + "/change.yaml"))
    try store.ok(["push", "--yes", "--app", "inventory", "--env", "production", folder])
  }

  func list(_ store: StoreFixture, _ arguments: [String]) throws -> [[String: Any]] {
    let outcome = try store.run(["backup", "list"] + arguments + ["--json"])
    #expect(outcome.status == 0, "\(outcome)")
    return try JSONSerialization.jsonObject(with: outcome.stdoutData) as? [[String: Any]] ?? []
  }

  func production(_ backups: String) -> String { backups + "/inventory/production" }

  @Test("a plain ls lists an environment's backups by time: v10 after v2")
  func plainListingSortsByTime() throws {
    let (store, backups) = try backedUp()
    for number in 3...10 { try pushChange(store, number) }
    Thread.sleep(forTimeInterval: 1.1)  // the next backup's name carries a later second
    try store.ok(["backup", "--to", backups, "--env", "production"])
    let listed = try Harness.shell("ls '\(production(backups))'").stdout.split(separator: "\n").map(String.init)
    #expect(listed.count == 2)
    #expect(listed.first?.hasSuffix("-inventory-production-v2.tar.zst") == true, "\(listed)")
    #expect(listed.last?.hasSuffix("-inventory-production-v10.tar.zst") == true, "\(listed)")
    let lines = try store.ok(["backup", "list", "--to", backups, "--env", "production"]).split(separator: "\n")
    #expect(lines.count == 2 && lines[0].contains("  v2  ") && lines[1].contains("  v10  "), "\(lines)")
    #expect(lines[1].hasSuffix(production(backups) + "/" + listed[1]), "the path is last: \(lines)")
  }

  @Test("list shows every backup of both name layouts oldest first, with filters and JSON fields")
  func listing() throws {
    let (store, backups) = try backedUp()
    let written = try #require(
      try FileManager.default.contentsOfDirectory(atPath: production(backups)).first { $0.hasSuffix(".tar.zst") })
    // A backup written by an earlier confvault, in the layout with the version first, a day older.
    let older = "inventory-production-v2-" + stamp(secondsAgo: 86_400) + ".tar.zst"
    try FileManager.default.copyItem(
      atPath: production(backups) + "/" + written, toPath: production(backups) + "/" + older)
    for foreign in ["notes.txt", "inventory-production-latest.tar.zst", written + ".bak"] {
      try Data("not a backup".utf8).write(to: URL(fileURLWithPath: production(backups) + "/" + foreign))
    }
    let all = try list(store, ["--to", backups])
    #expect(all.count == 3, "two of production, one of development, none of the foreign files: \(all)")
    #expect(all.first?["file"] as? String == production(backups) + "/" + older, "the oldest first: \(all)")
    let times = all.compactMap { $0["writtenAt"] as? String }
    #expect(times.count == 3 && times == times.sorted())
    for backup in all {
      #expect(Set(backup.keys) == ["app", "environment", "version", "writtenAt", "bytes", "compression", "file"])
      let path = try #require(backup["file"] as? String)
      let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int
      #expect(backup["bytes"] as? Int == size, "\(backup)")
    }
    let development = try list(store, ["--to", backups, "--env", "development"])
    #expect(development.count == 1 && development[0]["version"] as? Int == 1)
    #expect(
      development[0]["environment"] as? String == "development" && development[0]["compression"] as? String == "zstd")

    let text = try store.ok(["backup", "list", "--to", backups, "--app", "inventory"])
    #expect(text.split(separator: "\n").count == 3)
    #expect(text.contains("  inventory/production  v2  "), "\(text)")

    let typo = try store.run(["backup", "list", "--to", backups, "--env", "prodution"])
    #expect(typo.status == 1, "\(typo)")
    #expect(
      typo.stderr.contains("no backups of environment 'prodution'") && typo.stderr.contains("development, production"))
    let otherApp = try store.run(["backup", "list", "--to", backups, "--app", "billing"])
    #expect(otherApp.status == 1 && otherApp.stderr.contains("apps with backups there: inventory"), "\(otherApp)")
    let missing = try store.run(["backup", "list", "--to", store.folder.file("nowhere")])
    #expect(missing.status == 66, "\(missing)")
  }

  @Test("--latest prints the newest backup that reads back good, passing over a damaged or misnamed newer one")
  func latest() throws {
    let (store, backups) = try backedUp()
    try pushChange(store, 3)
    Thread.sleep(forTimeInterval: 1.1)
    try store.ok(["backup", "--to", backups, "--env", "production"])
    let files = try list(store, ["--to", backups, "--env", "production"]).compactMap { $0["file"] as? String }
    #expect(files.count == 2)
    let (good, newest) = (files[0], files[1])

    let latest = try list(store, ["--to", backups, "--latest"])
    #expect(
      latest.map { $0["environment"] as? String } == ["development", "production"], "one per environment, by time")
    #expect(latest.last?["file"] as? String == newest && latest.last?["version"] as? Int == 3)

    // Truncate the newest: a "take the last file" script would restore it; --latest does not.
    #expect(try Harness.shell("truncate -s 200 '\(newest)'").status == 0)
    // And a copy of v2's backup under a later name that claims v4: good bytes, but not what its name says.
    let claims = production(backups) + "/" + stamp(secondsAgo: -3_600) + "-inventory-production-v4.tar.zst"
    try FileManager.default.copyItem(atPath: good, toPath: claims)
    let outcome = try store.run(["backup", "list", "--to", backups, "--env", "production", "--latest"])
    #expect(outcome.status == 0, "\(outcome)")
    #expect(outcome.stdout.split(separator: "\n").count == 1 && outcome.stdout.hasSuffix(good + "\n"), "\(outcome)")
    #expect(outcome.stdout.contains("  inventory/production  v2  "))
    #expect(
      outcome.stderr.contains("passed over `\(newest)`") && outcome.stderr.contains("passed over `\(claims)`"),
      "each newer file passed over is named: \(outcome.stderr)")
    #expect(outcome.stderr.contains("its manifest says inventory/production v2, not inventory/production v4"))

    // With nothing good left, no file is printed and the exit code says why.
    #expect(try Harness.shell("truncate -s 100 '\(good)' && rm '\(claims)'").status == 0)
    let none = try store.run(["backup", "list", "--to", backups, "--env", "production", "--latest", "--json"])
    #expect(none.status == 65, "\(none)")
    #expect(try JSONSerialization.jsonObject(with: none.stdoutData) as? [Any] != nil, "the JSON still parses")
    #expect(none.stdout.contains("[") && !none.stdout.contains("production"), "no production file: \(none.stdout)")
    #expect(none.stderr.contains("no backup of inventory/production reads back good (2 tried)"), "\(none.stderr)")
  }

  @Test("--latest reads within the limits and names the flag that raises them")
  func latestWithinLimits() throws {
    let (store, backups) = try backedUp()
    let outcome = try store.run([
      "backup", "list", "--to", backups, "--env", "production", "--latest", "--max-files", "5",
    ])
    #expect(outcome.status == 65, "\(outcome)")
    #expect(
      outcome.stderr.contains("limit 5") && outcome.stderr.contains("raise the limit with --max-files"), "\(outcome)")
    let raised = try store.run([
      "backup", "list", "--to", backups, "--env", "production", "--latest", "--max-files", "40",
    ])
    #expect(raised.status == 0 && raised.stdout.contains("inventory/production  v2"), "\(raised)")
  }

  @Test("`backup` still runs a backup; `backup run` is the same; `backup list` writes nothing")
  func subcommands() throws {
    let (store, backups) = try backedUp()
    let again = try store.ok(["backup", "--to", backups, "--always", "--env", "development"])
    #expect(
      again.contains("inventory/development  written  v1") || again.contains("written in this second"), "\(again)")
    let named = try store.ok(["backup", "run", "--to", backups, "--env", "production"])
    #expect(named.contains("inventory/production  unchanged  v2"), "\(named)")
    let before = try Harness.shell("cd '\(backups)' && find . | sort").stdout
    try store.ok(["backup", "list", "--to", backups, "--latest"])
    #expect(try Harness.shell("cd '\(backups)' && find . | sort").stdout == before, "listing changes nothing")
    let help = try store.ok(["backup", "--help"])
    #expect(help.contains("list") && help.contains("run"), "\(help)")
  }

  /// A UTC time stamp as backup names carry it, `secondsAgo` before now (negative: in the future).
  func stamp(secondsAgo: Double) -> String {
    ISO8601DateFormatter().string(from: Date(timeIntervalSinceNow: -secondsAgo))
      .replacingOccurrences(of: "-", with: "").replacingOccurrences(of: ":", with: "")
  }
}
