import Foundation
import Testing

/// The rest of a newcomer's first hour: the app named once, production chosen and changed, and one
/// set of limits for push, import and verify.
@Suite struct FirstHourTests {
  @Test("CONFVAULT_APP names the app, a store's only app needs no --app, several apps need one (64)")
  func defaultApp() throws {
    let store = try StoreFixture()
    try store.ok(["push", "--env", "development", Harness.samples + "/development"])
    #expect(try store.ok(["versions"]).contains("v1      development"))
    try store.ok(["init", "--app", "billing"])
    let ambiguous = try store.run(["versions"])
    #expect(ambiguous.status == 64, "\(ambiguous)")
    #expect(ambiguous.stderr.contains("'billing', 'inventory'") && ambiguous.stderr.contains("CONFVAULT_APP"))
    var environment = store.environment
    environment["CONFVAULT_APP"] = "billing"
    let billing = try Harness.confvault(["env", "list"], environment: environment)
    #expect(billing.status == 0 && billing.stdout.contains("production (production)  no version"), "\(billing)")
    let flagWins = try Harness.confvault(["versions", "--app", "inventory"], environment: environment)
    #expect(flagWins.stdout.contains("v1      development"), "--app wins over CONFVAULT_APP: \(flagWins)")
    environment["CONFVAULT_APP"] = "Bad Name"
    #expect(try Harness.confvault(["versions"], environment: environment).status == 64)
  }

  @Test("init names its production or says --no-production; env set-production changes it later")
  func production() throws {
    let store = try StoreFixture()
    let silent = try store.run(["init", "--app", "shop", "--env", "dev", "--env", "live"])
    #expect(silent.status == 64 && silent.stderr.contains("--production NAME"), "\(silent)")
    try store.ok(["init", "--app", "shop", "--env", "dev", "--env", "live", "--no-production"])
    let noTarget = try store.run(["sync", "--app", "shop", "dev", "--yes"])
    #expect(noTarget.status != 0)
    let made = try store.ok(["env", "set-production", "--app", "shop", "live"])
    #expect(made.contains("'live' is now the production environment of 'shop'"), "\(made)")
    let listed = try store.ok(["env", "list", "--app", "shop"])
    #expect(listed.contains("live (production)") && !listed.contains("dev (production)"), "\(listed)")
    try store.ok(["env", "set-production", "--app", "shop", "dev"])
    #expect(try store.ok(["env", "list", "--app", "shop"]).contains("dev (production)"))
    let audit = try store.ok(["audit", "--app", "shop"])
    #expect(audit.contains("env-set-production"), "\(audit)")
    let missing = try store.run(["env", "set-production", "--app", "shop", "qa"])
    #expect(missing.status == 1 && missing.stderr.contains("no environment 'qa'"), "\(missing)")
    #expect(try store.ok(["check"]).hasPrefix("OK"))
  }

  @Test("push refuses a file that import and verify would refuse, naming the file, the limit and the flag")
  func oneSetOfLimits() throws {
    let store = try StoreFixture()
    let folder = try store.copy("development", to: "dev")
    try Data(repeating: 0x61, count: 300_000).write(to: URL(fileURLWithPath: folder + "/big.bin"))
    let before = try store.snapshot()
    let push = ["push", "--app", "inventory", "--env", "development", folder, "--max-file-size", "200000"]
    let refused = try store.run(push)
    #expect(refused.status == 65, "\(refused)")
    #expect(
      refused.stderr.contains("`big.bin`") && refused.stderr.contains("200000 bytes")
        && refused.stderr.contains("--max-file-size"), "\(refused)")
    #expect(try store.snapshot() == before, "nothing was written")
    let tooMany = try store.run(push.dropLast(2) + ["--max-files", "10"])
    #expect(tooMany.status == 65 && tooMany.stderr.contains("--max-files"), "\(tooMany)")
    // What push accepts with the limit raised, import and verify accept with the same flag, and refuse without.
    try store.ok(push.dropLast(2) + ["--max-file-size", "400000"])
    let archive = store.folder.file("big.tar.gz")
    try store.ok(["export", "--app", "inventory", "--env", "development", "-o", archive])
    let verify = try store.run(["verify", archive, "--max-file-size", "200000"])
    #expect(verify.status == 65 && verify.stderr.contains("--max-file-size"), "\(verify)")
    let imported = try store.run([
      "import", archive, "--app", "inventory", "--env", "staging", "--max-file-size", "200000",
    ])
    #expect(imported.status == 65 && imported.stderr.contains("config/big.bin"), "\(imported)")
  }

  @Test("--verbose logs the store it opened and how long the command took")
  func verbose() throws {
    let store = try StoreFixture()
    let outcome = try store.run(["versions", "--app", "inventory", "--verbose"])
    #expect(outcome.status == 0)
    #expect(outcome.stderr.contains("store opened") && outcome.stderr.contains(store.environment["CONFVAULT_STORE"]!))
    #expect(outcome.stderr.contains("command finished") && outcome.stderr.contains("took="), "\(outcome)")
    #expect(try store.run(["versions", "--app", "inventory"]).stderr.isEmpty, "quiet without --verbose")
  }

  @Test("pack of a checked-out folder leaves out the checkout's record, so its archive imports as the same tree")
  func packLeavesOutCheckoutRecord() throws {
    let store = try StoreFixture()
    try store.ok(["push", "--app", "inventory", "--env", "development", Harness.samples + "/development"])
    let folder = store.folder.file("work")
    try store.ok(["checkout", "--app", "inventory", "--env", "development", "--to", folder])
    #expect(store.folder.exists("work/.confvault/checkout.json"))
    let archive = store.folder.file("work.tar.gz")
    try Harness.confvault(["pack", folder, "-o", archive, "--app", "inventory", "--env", "development"])
    let inspected = try Harness.confvault(["inspect", archive])
    #expect(inspected.status == 0 && !inspected.stdout.contains(".confvault"), "\(inspected)")
    let imported = try store.ok(["import", archive, "--app", "inventory", "--env", "development"])
    #expect(imported.contains("unchanged, head is v1"), "the same tree as the head: \(imported)")
  }

  @Test("an empty configuration is refused (65) unless --allow-empty says so: push, import, verify; backups keep it")
  func emptyNeedsAllowEmpty() throws {
    let store = try StoreFixture()
    try store.ok(["push", "--app", "inventory", "--env", "development", Harness.samples + "/development"])
    try store.ok(["push", "--app", "inventory", "--env", "staging", Harness.samples + "/staging"])
    let empty = store.folder.file("empty")
    try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
    try store.ok(["push", "--app", "inventory", "--env", "staging", empty, "--allow-empty", "--yes"])
    let archive = store.folder.file("empty.tar.gz")
    try store.ok(["export", "--app", "inventory", "--env", "staging", "-o", archive])
    let verified = try Harness.confvault(["verify", archive])
    #expect(verified.status == 65 && verified.stderr.contains("--allow-empty"), "\(verified)")
    #expect(try Harness.confvault(["verify", archive, "--allow-empty"]).status == 0)
    let before = try store.snapshot()
    let imported = try store.run(["import", archive, "--app", "inventory", "--env", "development"])
    #expect(imported.status == 65 && imported.stderr.contains("archive holds no files"), "\(imported)")
    #expect(try store.snapshot() == before)
    let emptied = try store.ok([
      "import", archive, "--app", "inventory", "--env", "development", "--allow-empty", "--yes",
    ])
    #expect(emptied.contains("imported as v4"), "\(emptied)")
    let backup = try store.run(["backup", "--to", store.folder.file("backups")])
    #expect(backup.status == 0, "an empty version is backed up and read back: \(backup)")
  }
}
