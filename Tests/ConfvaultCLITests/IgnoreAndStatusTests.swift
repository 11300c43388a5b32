import Foundation
import Testing

/// Ignore rules for push and status, `status` itself, and a checked-out folder that knows where it
/// came from, so that a stale one cannot silently undo a restore (issue 10, points 2 and 5).
@Suite struct IgnoreAndStatusTests {
  /// Replaces `old` with `new` in a file of `folder`.
  static func edit(_ folder: String, _ path: String, _ old: String, _ new: String) throws {
    let file = folder + "/" + path
    let text = try String(contentsOfFile: file, encoding: .utf8)
    #expect(text.contains(old), "\(path) holds \(old)")
    try text.replacingOccurrences(of: old, with: new).write(toFile: file, atomically: true, encoding: .utf8)
  }

  /// The paths of the head of `environment`, as a checkout writes them.
  static func headFiles(_ store: StoreFixture, _ environment: String, _ name: String) throws -> [String] {
    try store.ok(["checkout", "--app", "inventory", "--env", environment, "--to", store.folder.file(name)])
    return try folderFingerprint(store.folder.file(name)).keys.sorted()
  }

  @Test(
    "push leaves out .git/, .DS_Store, swap files and what .confvaultignore says, and says so; --no-ignore keeps them")
  func ignoreRules() throws {
    let store = try StoreFixture()
    let folder = try store.copy("development", to: "work")
    for index in 0..<300 { try store.folder.write("work/.git/objects/\(index)", "blob \(index)\n") }
    // A symlink would make the push refuse the folder; inside .git it is never looked at.
    #expect(symlink("/etc/passwd", folder + "/.git/hooks-link") == 0)
    try store.folder.write("work/.DS_Store", "litter")
    try store.folder.write("work/settings/x.swp", "swap")
    try store.folder.write("work/settings/app.yaml~", "backup")
    try store.folder.write("work/settings/local.override.yaml", "debug: true\n")
    try store.folder.write("work/settings/shared.override.yaml", "debug: false\n")
    try store.folder.write(
      "work/.confvaultignore", "# overrides stay on this machine\n\n*.override.yaml\n!shared.override.yaml\n")

    let pushed = try store.run(["push", "--app", "inventory", "--env", "development", folder])
    #expect(pushed.status == 0, "\(pushed)")
    #expect(
      pushed.stdout.contains(
        "ignored 6 paths: .DS_Store, .confvaultignore, .git/, settings/app.yaml~, settings/local.override.yaml and 1 more"
      ), "\(pushed)")
    let files = try Self.headFiles(store, "development", "out")
    let sample = try folderFingerprint(Harness.samples + "/development").keys.sorted()
    #expect(files == (sample + ["settings/shared.override.yaml"]).sorted(), "\(files)")

    // --no-ignore pushes everything (once the symlink, which no configuration can hold, is gone).
    #expect(unlink(folder + "/.git/hooks-link") == 0)
    let everything = try store.run(["push", "--app", "inventory", "--env", "development", folder, "--no-ignore"])
    #expect(everything.status == 0 && !everything.stdout.contains("ignored"), "\(everything)")
    let all = try Self.headFiles(store, "development", "all")
    #expect(all.contains(".git/objects/299") && all.contains(".DS_Store") && all.contains(".confvaultignore"))
    #expect(all.contains("settings/x.swp") && all.count == sample.count + 300 + 6, "\(all.count)")
  }

  @Test("status shows what a push would change, at key-path level, and the ignored files; it writes nothing")
  func status() throws {
    let store = try StoreFixture()
    try store.ok(["push", "--app", "inventory", "--env", "development", Harness.samples + "/development"])
    let work = store.folder.file("work")
    try store.ok(["checkout", "--app", "inventory", "--env", "development", "--to", work])
    let record = try JSONSerialization.jsonObject(with: store.folder.bytes("work/.confvault/checkout.json"))
    let fields = record as? [String: Any] ?? [:]
    #expect(fields["app"] as? String == "inventory" && fields["environment"] as? String == "development")
    #expect(fields["version"] as? Int == 1 && (fields["treeDigest"] as? String)?.hasPrefix("sha256:") == true)
    #expect((fields["store"] as? String)?.hasSuffix("/store") == true, "\(fields)")

    let clean = try store.run(["status", "--app", "inventory", "--env", "development", work])
    #expect(clean.status == 0 && clean.stderr.isEmpty, "\(clean)")
    #expect(clean.stdout.contains("checked out from v1 of inventory/development"), "\(clean)")
    #expect(clean.stdout.contains("would change nothing in inventory/development (head v1)"), "\(clean)")
    #expect(!clean.stdout.contains("ignored"), "the checkout record is not worth a word: \(clean)")

    try Self.edit(work, "settings/app.yaml", "level: debug", "level: trace")
    try store.folder.write("work/.DS_Store", "litter")
    let before = try store.snapshot()
    let changed = try store.run(["status", "--app", "inventory", "--env", "development", work])
    #expect(changed.status == 0, "\(changed)")
    #expect(changed.stdout.contains(#"settings/app.yaml  logging.level: "debug" -> "trace""#), "\(changed)")
    #expect(changed.stdout.contains("1 files changed: 0 added, 0 removed, 1 modified"), "\(changed)")
    #expect(changed.stdout.contains("ignored 1 path: .DS_Store"), "\(changed)")
    #expect(!changed.stdout.contains("dry run"), "\(changed)")

    let json = try store.run(["status", "--app", "inventory", "--env", "development", work, "--json"])
    let object = try JSONSerialization.jsonObject(with: json.stdoutData) as? [String: Any] ?? [:]
    #expect(
      Set(object.keys) == ["app", "environment", "head", "checkedOutFrom", "headMoved", "changes", "ignored"],
      "\(json)")
    #expect(object["head"] as? Int == 1 && object["headMoved"] as? Bool == false)
    #expect((object["checkedOutFrom"] as? [String: Any])?["version"] as? Int == 1)
    #expect(object["ignored"] as? [String] == [".DS_Store"])
    let changes = object["changes"] as? [[String: Any]] ?? []
    #expect(changes.count == 1 && changes.first?["path"] as? String == "settings/app.yaml", "\(changes)")
    #expect(changes.first?["keys"] != nil, "key-path level: \(changes)")
    #expect(try store.snapshot() == before, "status writes nothing")

    // --no-ignore compares everything but the checkout record.
    let unignored = try store.run(["status", "--app", "inventory", "--env", "development", work, "--no-ignore"])
    #expect(unignored.stdout.contains("A .DS_Store") && !unignored.stdout.contains("checkout.json"), "\(unignored)")
  }

  @Test(
    "push and status name a missing store, app or environment before a folder that cannot be read, though they scan it meanwhile"
  )
  func storeBeforeFolder() throws {
    let store = try StoreFixture()
    let folder = store.folder.file("no-such-folder")
    let before = try store.snapshot()
    let commands = [
      ["push", "--env", "development", folder, "--yes"], ["push", "--env", "development", folder, "--dry-run"],
      ["status", "--env", "development", folder],
    ]
    let cases: [(arguments: [String], status: Int32, says: String)] = [
      (["--app", "inventory", "--store", store.folder.file("no-store")], 66, "no store at"),
      (["--app", "nope"], 1, "no app 'nope' in the store"),
      (["--app", "inventory", "--env", "nope"], 1, "no environment 'nope' in app 'inventory'"),
      (["--app", "inventory"], 66, "cannot open `\(folder)`"),
    ]
    for command in commands {
      for (arguments, status, says) in cases {
        let outcome = try store.run(command + arguments)
        #expect(outcome.status == status && outcome.stderr.contains(says), "\(command + arguments): \(outcome)")
      }
    }
    #expect(try store.snapshot() == before, "nothing was written")
  }

  @Test("a stale checkout cannot undo a restore: push refuses it (exit 1, nothing written) unless --force")
  func staleFolder() throws {
    let store = try StoreFixture()
    let development = ["--app", "inventory", "--env", "development"]
    try store.ok(["push"] + development + [Harness.samples + "/development", "-m", "first"])
    let second = try store.copy("development", to: "second")
    try Self.edit(second, "settings/app.yaml", "level: debug", "level: trace")
    try store.ok(["push"] + development + [second, "-m", "trace logging"])
    let old = store.folder.file("old")
    try store.ok(["checkout"] + development + ["--to", old])
    // Issue 10, point 2: the team restores v1; someone then pushes the old working folder.
    try store.ok(["restore", "--app", "inventory", "1", "--env", "development", "-m", "back to v1"])
    #expect(try store.heads()["development"] == 3)
    let before = try store.snapshot()
    let recordBefore = try store.folder.bytes("old/.confvault/checkout.json")

    let refused = try store.run(["push"] + development + [old])
    #expect(refused.status == 1, "\(refused)")
    #expect(
      refused.stderr.contains("was checked out from v2 of inventory/development")
        && refused.stderr.contains("has moved on to v3 (restore by ana: back to v1)")
        && refused.stderr.contains("nothing was changed"), "\(refused)")
    #expect(
      refused.stderr.contains("run `confvault status --app inventory --env development \(old)`")
        && refused.stderr.contains("--force"), "\(refused)")
    #expect(try store.snapshot() == before, "a refused push writes nothing")
    #expect(try store.folder.bytes("old/.confvault/checkout.json") == recordBefore)

    let status = try store.run(["status"] + development + [old, "--json"])
    #expect(status.status == 0, "\(status)")
    let object = try JSONSerialization.jsonObject(with: status.stdoutData) as? [String: Any] ?? [:]
    #expect(object["headMoved"] as? Bool == true && object["head"] as? Int == 3, "\(status)")
    let warned = try store.run(["status"] + development + [old])
    #expect(warned.status == 0 && warned.stderr.contains("warning: `\(old)` was checked out from v2"), "\(warned)")
    #expect(warned.stdout.contains(#"logging.level: "debug" -> "trace""#), "\(warned)")
    let dryRun = try store.run(["push"] + development + [old, "--dry-run"])
    #expect(dryRun.status == 0 && dryRun.stderr.contains("a push would be refused"), "\(dryRun)")

    // Another environment's head says nothing about this checkout.
    try store.ok(["push", "--app", "inventory", "--env", "staging", old])

    let forced = try store.run(["push"] + development + [old, "--force", "-m", "trace again"])
    #expect(forced.status == 0 && forced.stdout.contains("pushed v5 to inventory/development"), "\(forced)")
    #expect(forced.stderr.contains("pushed anyway"), "\(forced)")
    let record = try JSONSerialization.jsonObject(with: store.folder.bytes("old/.confvault/checkout.json"))
    #expect((record as? [String: Any])?["version"] as? Int == 5, "the record moves on to the pushed version")
    let archive = store.folder.file("v5.tar.gz")
    try store.ok(["export"] + development + ["-o", archive])
    let inspected = try Harness.confvault(["inspect", archive, "--json"]).stdout
    #expect(inspected.contains("settings/app.yaml") && !inspected.contains("checkout.json"), "never pushed")
  }

  @Test("after a push from a checked-out folder, the next push from it is decided on the new head")
  func recordFollowsPushes() throws {
    let store = try StoreFixture()
    let development = ["--app", "inventory", "--env", "development"]
    try store.ok(["push"] + development + [Harness.samples + "/development"])
    let work = store.folder.file("work")
    try store.ok(["checkout"] + development + ["--to", work])
    try Self.edit(work, "settings/app.yaml", "level: debug", "level: trace")
    #expect(try store.ok(["push"] + development + [work]).contains("pushed v2"))
    try Self.edit(work, "settings/app.yaml", "level: trace", "level: warn")
    let next = try store.run(["push"] + development + [work])
    #expect(next.status == 0 && next.stdout.contains("pushed v3") && next.stderr.isEmpty, "\(next)")
    // A head moved by someone else, to a tree the folder does not hold, refuses the folder again.
    let other = try store.copy("development", to: "other")
    try store.ok(["push"] + development + [other])
    try Self.edit(work, "settings/app.yaml", "level: warn", "level: error")
    #expect(try store.run(["push"] + development + [work]).status == 1)
  }
}
