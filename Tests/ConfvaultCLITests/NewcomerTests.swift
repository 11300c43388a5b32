import Foundation
import Testing

/// What a newcomer meets in the first hour: previews before writing, the names the tool prints taken
/// back, a mistyped command, the archive's compression from its name, and who the author is.
@Suite struct NewcomerTests {
  @Test("--dry-run on push, restore and sync shows the change at key-path level and writes nothing")
  func dryRuns() throws {
    let store = try StoreFixture()
    try store.ok(["push", "--app", "inventory", "--env", "development", Harness.samples + "/development"])
    let changed = try store.copy("development", to: "dev")
    let settings = changed + "/settings/app.yaml"
    let text = try String(contentsOfFile: settings, encoding: .utf8)
    try text.replacingOccurrences(of: "level: debug", with: "level: trace").write(
      toFile: settings, atomically: true, encoding: .utf8)
    let before = try store.snapshot()
    let push = try store.ok(["push", "--app", "inventory", "--env", "development", changed, "--dry-run"])
    #expect(push.contains(#"settings/app.yaml  logging.level: "debug" -> "trace""#), "\(push)")
    #expect(push.contains("nothing was written") && push.contains("(head v1)"))
    let restore = try store.ok(["restore", "--app", "inventory", "v1", "--env", "staging", "--dry-run"])
    #expect(restore.contains("A settings/app.yaml") && restore.contains("(head no version yet)"), "\(restore)")
    let sync = try store.ok(["sync", "--app", "inventory", "development", "--dry-run"])
    #expect(sync.contains("into inventory/production") && sync.contains("nothing was written"), "\(sync)")
    #expect(try store.snapshot() == before, "a dry run writes nothing")
  }

  @Test("a version is taken as 16, v16, or an environment's name for its head")
  func versionReferences() throws {
    let store = try StoreFixture()
    try store.ok(["push", "--app", "inventory", "--env", "development", Harness.samples + "/development"])
    try store.ok(["push", "--app", "inventory", "--env", "staging", Harness.samples + "/staging"])
    #expect(try store.ok(["show", "--app", "inventory", "v2"]).hasPrefix("version      v2 of inventory"))
    #expect(try store.ok(["show", "--app", "inventory", "development"]).hasPrefix("version      v1 of inventory"))
    #expect(
      try store.ok(["diff", "--app", "inventory", "development", "staging", "--stat"]).hasPrefix(
        "diff inventory v1 -> v2"))
    #expect(
      try store.ok(["sync", "--yes", "--app", "inventory", "staging"]).contains("synced v2 to inventory/production"))
    let exported = try store.ok([
      "export", "--app", "inventory", "--version", "v1", "-o", store.folder.file("v1.tar.gz"),
    ])
    #expect(exported.contains("exported v1"))
    let none = try store.run(["show", "--app", "inventory", "production-eu"])
    #expect(none.status == 1 && none.stderr.contains("no environment 'production-eu'"), "\(none)")
    let bad = try store.run(["show", "--app", "inventory", "V2!"])
    #expect(bad.status == 64, "\(bad)")
  }

  @Test("a mistyped command is answered with the commands it is close to, exit 64")
  func didYouMean() throws {
    let outcome = try Harness.confvault(["psuh", "--app", "inventory", "--env", "development", "."])
    #expect(outcome.status == 64 && outcome.stderr.contains("did you mean `push`?"), "\(outcome)")
    let far = try Harness.confvault(["xyzzy"])
    #expect(far.status == 64 && far.stderr.contains("unknown command `xyzzy`") && !far.stderr.contains("did you mean"))
  }

  @Test("export and pack take the compression from the output name; export refuses a name that contradicts it")
  func compressionFromName() throws {
    let store = try StoreFixture()
    try store.ok(["push", "--app", "inventory", "--env", "development", Harness.samples + "/development"])
    try store.ok(["export", "--app", "inventory", "--env", "development", "-o", store.folder.file("y.tar.zst")])
    let inspected = try store.ok(["inspect", store.folder.file("y.tar.zst"), "--json"])
    #expect(inspected.contains(#""compression" : "zstd""#), "\(inspected)")
    let contradiction = try store.run([
      "export", "--app", "inventory", "--env", "development", "-o", store.folder.file("z.tar.zst"), "--compression",
      "xz",
    ])
    #expect(contradiction.status == 64 && contradiction.stderr.contains("contradicts"), "\(contradiction)")
    #expect(!store.folder.exists("z.tar.zst"))
    try Harness.confvault(["pack", Harness.samples + "/staging", "-o", store.folder.file("p.tar.xz")])
    #expect(try Harness.confvault(["inspect", store.folder.file("p.tar.xz")]).stdout.contains("xz,"))
  }

  @Test("under sudo the author is the person who ran sudo, not root")
  func sudoAuthor() throws {
    let store = try StoreFixture()
    var environment = store.environment
    environment["CONFVAULT_AUTHOR"] = ""
    environment["SUDO_USER"] = "ana.operator"
    let pushed = try Harness.confvault(
      ["push", "--app", "inventory", "--env", "development", Harness.samples + "/development"], environment: environment
    )
    #expect(pushed.status == 0, "\(pushed)")
    let author = try store.versions().first?["author"] as? String
    #expect(geteuid() != 0 || author == "ana.operator", "as root with SUDO_USER set: \(author ?? "-")")
  }

  @Test("backup reports each environment's real duration")
  func backupDurations() throws {
    let store = try StoreFixture()
    try store.ok(["push", "--app", "inventory", "--env", "development", Harness.samples + "/development"])
    try store.ok(["push", "--app", "inventory", "--env", "staging", Harness.samples + "/staging"])
    let outcomes =
      try JSONSerialization.jsonObject(
        with: try store.run(["backup", "--to", store.folder.file("backups"), "--json"]).stdoutData) as? [[String: Any]]
      ?? []
    #expect(outcomes.count == 2)
    for outcome in outcomes {
      #expect((outcome["seconds"] as? Double ?? 0) > 0, "a backup takes time: \(outcome)")
    }
  }
}
