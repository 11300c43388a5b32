import Foundation
import Testing

/// A guarded production: a change to production, or one that removes most of an environment, is
/// shown and asked about on a terminal, refused without one unless `--yes` says it is meant.
@Suite struct ConfirmationTests {
  /// Runs `confvault` on a pseudo-terminal, typing `answer` at the question; returns what the
  /// terminal showed (standard output and error together) and the exit status.
  static func onTerminal(_ store: StoreFixture, _ arguments: [String], answer: String?) throws -> Outcome {
    var environment = store.environment
    environment["CONFVAULT_BIN"] = Harness.binary
    let command = ["python3", Harness.fixtures + "/pty_run.py"] + (answer.map { ["--answer", $0] } ?? [])
    return try Harness.run(
      "/usr/bin/env", command + ["--", Harness.binary] + arguments, environment: environment)
  }

  static func production(_ store: StoreFixture) throws -> String {
    try store.ok(["checkout", "--app", "inventory", "--env", "production", "--to", store.folder.file("live")])
    defer { try? FileManager.default.removeItem(atPath: store.folder.file("live")) }
    return try String(contentsOfFile: store.folder.file("live/connections/database.yaml"), encoding: .utf8)
  }

  /// v1 development, v2 production.
  static func twoEnvironments() throws -> StoreFixture {
    let store = try StoreFixture()
    try store.ok(["push", "--app", "inventory", "--env", "development", Harness.samples + "/development"])
    try store.ok(["push", "--yes", "--app", "inventory", "--env", "production", Harness.samples + "/production"])
    return store
  }

  @Test("restoring a development version into production without a terminal is refused with 64 unless --yes")
  func productionNeedsYesWithoutTerminal() throws {
    let store = try Self.twoEnvironments()
    let before = try store.snapshot()
    let refused = try store.run(["restore", "--app", "inventory", "1", "--env", "production"])
    #expect(refused.status == 64, "\(refused)")
    #expect(refused.stderr.contains("the production environment") && refused.stderr.contains("--yes"), "\(refused)")
    #expect(try store.snapshot() == before, "a refused change writes nothing")
    #expect(try Self.production(store).contains("host: db.inventory.example.com"))
    for arguments in [
      ["sync", "--app", "inventory", "1"],
      ["push", "--app", "inventory", "--env", "production", Harness.samples + "/staging"],
    ] {
      let outcome = try store.run(arguments)
      #expect(outcome.status == 64 && outcome.stderr.contains("--yes"), "\(arguments): \(outcome)")
    }
    try store.ok(["export", "--app", "inventory", "--env", "development", "-o", store.folder.file("dev.tar.gz")])
    let after = try store.snapshot()  // the export is in the audit log
    let imported = try store.run([
      "import", store.folder.file("dev.tar.gz"), "--app", "inventory", "--env", "production",
    ])
    #expect(imported.status == 64 && imported.stderr.contains("cron job"), "\(imported)")
    #expect(try store.snapshot() == after, "a refused import writes nothing")
    try store.ok(["restore", "--yes", "--app", "inventory", "1", "--env", "production"])
    #expect(try Self.production(store).contains("host: db.dev.inventory.internal"))
  }

  @Test("on a terminal a production change shows its preview; n changes nothing, y makes it")
  func productionAsksOnTerminal() throws {
    let store = try Self.twoEnvironments()
    let before = try store.snapshot()
    let declined = try Self.onTerminal(
      store, ["restore", "--app", "inventory", "1", "--env", "production"], answer: "n")
    #expect(declined.status == 1, "\(declined)")
    #expect(declined.stdout.contains("connections/database.yaml  database.host:"), "the preview is shown: \(declined)")
    #expect(declined.stdout.contains("Make this change? [y/N]") && declined.stdout.contains("not confirmed"))
    #expect(try store.snapshot() == before, "n writes nothing")
    let accepted = try Self.onTerminal(
      store, ["restore", "--app", "inventory", "1", "--env", "production"], answer: "y")
    #expect(accepted.status == 0 && accepted.stdout.contains("restored v1 as v3"), "\(accepted)")
    #expect(try Self.production(store).contains("host: db.dev.inventory.internal"))
    let synced = try Self.onTerminal(store, ["sync", "--app", "inventory", "2"], answer: "yes")
    #expect(synced.status == 0 && synced.stdout.contains("synced v2 to inventory/production"), "\(synced)")
    let direct = try Self.onTerminal(store, ["sync", "--app", "inventory", "1", "--yes"], answer: nil)
    #expect(direct.status == 0 && !direct.stdout.contains("[y/N]"), "--yes does not ask: \(direct)")
  }

  @Test("pushing an empty folder or the parent folder by mistake asks, anywhere: more than half removed")
  func mostFilesRemoved() throws {
    let store = try StoreFixture()
    try store.ok(["push", "--app", "inventory", "--env", "development", Harness.samples + "/development"])
    let before = try store.snapshot()
    let empty = store.folder.file("empty")
    try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
    let emptied = try store.run(["push", "--app", "inventory", "--env", "development", empty])
    #expect(emptied.status == 65 && emptied.stderr.contains("--allow-empty"), "an empty folder is refused: \(emptied)")
    for arguments in [[empty, "--allow-empty"], [Harness.samples]] {
      let outcome = try store.run(["push", "--app", "inventory", "--env", "development"] + arguments)
      #expect(outcome.status == 64, "\(arguments): \(outcome)")
      #expect(outcome.stderr.contains("it removes 30 of the 30 files of inventory/development"), "\(outcome)")
    }
    #expect(try store.snapshot() == before)
    let asked = try Self.onTerminal(
      store, ["push", "--app", "inventory", "--env", "development", Harness.samples], answer: "n")
    #expect(asked.status == 1 && asked.stdout.contains("it removes 30 of the 30 files"), "\(asked)")
    #expect(asked.stdout.contains(" more files (--all lists every one)"), "a long preview is shortened: \(asked)")
    #expect(try store.snapshot() == before)
    let small = try store.copy("development", to: "dev")
    try FileManager.default.removeItem(atPath: small + "/README.md")
    let pushed = try store.ok(["push", "--app", "inventory", "--env", "development", small])
    #expect(pushed.contains("pushed v2"), "removing one file of 30 does not ask: \(pushed)")
  }

  @Test("restore --dry-run --json prints the preview; restore --json the version it made")
  func previewAndChangeAsJSON() throws {
    let store = try Self.twoEnvironments()
    let preview = try store.json(["restore", "--app", "inventory", "1", "--env", "production", "--dry-run"])
    let object = try #require(preview as? [String: Any])
    #expect(object["dryRun"] as? Bool == true)
    let inner = try #require(object["preview"] as? [String: Any])
    #expect(inner["head"] as? Int == 2 && inner["environment"] as? String == "production", "\(inner)")
    let made = try #require(
      try store.json(["restore", "--yes", "--app", "inventory", "1", "--env", "production"]) as? [String: Any])
    #expect((made["version"] as? [String: Any])?["number"] as? Int == 3 && made["unchanged"] as? Bool == false)
  }
}
