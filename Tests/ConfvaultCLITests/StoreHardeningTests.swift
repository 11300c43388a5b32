import Foundation
import Testing

/// A store with two versions of production (v2 adds `settings/logging.yaml`), for the read-only cases.
private func storeWithTwoVersions() throws -> StoreFixture {
  let store = try StoreFixture()
  try store.ok([
    "push", "--yes", "--app", "inventory", "--env", "production", Harness.samples + "/production", "-m", "first",
  ])
  let changed = try store.copy("production", to: "production-2")
  try Data("level: warn\n".utf8).write(to: URL(fileURLWithPath: changed + "/settings/logging.yaml"))
  try store.ok(["push", "--yes", "--app", "inventory", "--env", "production", changed, "-m", "second"])
  return store
}

/// The bytes of every file in `folder` and below, by relative path.
private func contents(of folder: String) throws -> [String: Data] {
  var files: [String: Data] = [:]
  guard let enumerator = FileManager.default.enumerator(atPath: folder) else { return files }
  for case let name as String in enumerator {
    let path = folder + "/" + name
    var isFolder: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), !isFolder.boolValue {
      files[name] = try Data(contentsOf: URL(fileURLWithPath: path))
    }
  }
  return files
}

@Suite(.serialized) struct StoreHardeningTests {
  /// Runs every command that only reads against the store `run` reaches, and checks what each prints;
  /// `output` is a folder the runner may write to.
  private func expectReadCommandsWork(
    _ run: ([String]) throws -> Outcome, treeDigest: String, output: String,
    sourceLocation: SourceLocation = #_sourceLocation
  ) throws {
    func ok(_ arguments: [String]) throws -> Outcome {
      let outcome = try run(arguments)
      #expect(outcome.status == 0, "\(arguments): \(outcome)", sourceLocation: sourceLocation)
      return outcome
    }
    let versions = try ok(["versions", "--app", "inventory"]).stdout
    #expect(versions.contains("second") && versions.contains("first"), "\(versions)", sourceLocation: sourceLocation)
    let shown = try ok(["show", "--app", "inventory", "2"]).stdout
    #expect(shown.contains("v2 of inventory, made in production"), "\(shown)", sourceLocation: sourceLocation)
    let diff = try ok(["diff", "--app", "inventory", "2"]).stdout
    #expect(diff.contains("A settings/logging.yaml"), "\(diff)", sourceLocation: sourceLocation)
    let audit = try ok(["audit", "--app", "inventory"]).stdout
    #expect(audit.contains("push  inventory/production  v2"), "\(audit)", sourceLocation: sourceLocation)
    let checked = try ok(["check"]).stdout
    #expect(checked.hasPrefix("OK: 2 versions"), "\(checked)", sourceLocation: sourceLocation)
    let environments = try ok(["env", "list", "--app", "inventory"]).stdout
    #expect(environments.contains("production (production)  v2"), "\(environments)", sourceLocation: sourceLocation)
    let checkout = try ok(["checkout", "--app", "inventory", "--env", "production", "--to", output + "/checkout"])
    #expect(checkout.stdout.contains("checked out v2"), "\(checkout)", sourceLocation: sourceLocation)
    let status = try ok(["status", "--app", "inventory", "--env", "production", output + "/checkout"]).stdout
    #expect(status.contains("would change nothing"), "\(status)", sourceLocation: sourceLocation)
    let dryRun = try ok([
      "push", "--app", "inventory", "--env", "staging", output + "/checkout", "--dry-run",
    ]).stdout
    #expect(dryRun.contains("nothing was written"), "\(dryRun)", sourceLocation: sourceLocation)

    let archive = output + "/production.tar.gz"
    let exported = try ok(["export", "--app", "inventory", "--env", "production", "-o", archive])
    #expect(exported.stdout.contains("exported v2"), "\(exported)", sourceLocation: sourceLocation)
    #expect(
      exported.stderr.contains("the export could not be recorded in the audit log"), "\(exported)",
      sourceLocation: sourceLocation)
    let verified = try Harness.confvault(["verify", archive])
    #expect(
      verified.status == 0 && verified.stdout.contains(treeDigest), "\(verified)", sourceLocation: sourceLocation)
  }

  /// The tree digest of v2, as the store reports it.
  private func treeDigest(_ store: StoreFixture) throws -> String {
    try #require(store.versions().first { $0["number"] as? Int == 2 }?["treeDigest"] as? String)
  }

  @Test(
    "on a read-only mount every read command works and the store stays byte for byte; a push exits 77",
    .enabled(if: geteuid() == 0, "mounting needs root"))
  func readOnlyMount() throws {
    let store = try storeWithTwoVersions()
    let digest = try treeDigest(store)
    let source = store.environment["CONFVAULT_STORE"]!
    let mount = store.folder.file("read-only-store")
    let output = store.folder.file("out")
    try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
    try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
    let mounted = try Harness.shell("mount --bind '\(source)' '\(mount)' && mount -o remount,bind,ro '\(mount)'")
    defer { _ = try? Harness.shell("umount '\(mount)'") }
    try #require(mounted.status == 0, "\(mounted)")
    let before = try contents(of: source)
    #expect(before.keys.sorted() == ["confvault.sqlite", "confvault.sqlite-shm", "confvault.sqlite-wal"])

    var environment = store.environment
    environment["CONFVAULT_STORE"] = mount
    try expectReadCommandsWork(
      { try Harness.confvault($0, environment: environment) }, treeDigest: digest, output: output)
    let pushed = try Harness.confvault(
      ["push", "--app", "inventory", "--env", "staging", Harness.samples + "/staging"], environment: environment)
    #expect(pushed.status == 77, "\(pushed)")
    #expect(pushed.stderr.contains("the store `\(mount)` is read-only"), "\(pushed)")
    #expect(try contents(of: source) == before, "nothing in the store folder changed")
  }

  @Test(
    "a user who may only read the store runs every read command; the store stays byte for byte; a push exits 77",
    .enabled(if: geteuid() == 0, "switching users needs root"))
  func readPermissionOnly() throws {
    let store = try storeWithTwoVersions()
    let digest = try treeDigest(store)
    let source = store.environment["CONFVAULT_STORE"]!
    let user = try #require(getpwnam("nobody")?.pointee)
    // The user must reach the binary and the store, and write only the output folder.
    let binary = store.folder.file("bin/confvault")
    let output = store.folder.file("out")
    try FileManager.default.createDirectory(atPath: store.folder.file("bin"), withIntermediateDirectories: true)
    try FileManager.default.copyItem(atPath: Harness.binary, toPath: binary)
    try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
    let prepared = try Harness.shell(
      "chmod 0755 '\(store.folder.path)' '\(store.folder.file("bin"))' && chmod 0755 '\(binary)'"
        + " && chmod -R u+rwX,go+rX,go-w '\(source)' && chown \(user.pw_uid):\(user.pw_gid) '\(output)'")
    try #require(prepared.status == 0, "\(prepared)")
    let before = try contents(of: source)
    #expect(before.keys.sorted() == ["confvault.sqlite", "confvault.sqlite-shm", "confvault.sqlite-wal"])

    let asUser = { (arguments: [String]) throws -> Outcome in
      try Harness.run(
        "/usr/bin/setpriv",
        ["--reuid=\(user.pw_uid)", "--regid=\(user.pw_gid)", "--clear-groups", binary] + arguments,
        environment: store.environment)
    }
    let probe = try Harness.run(
      "/usr/bin/setpriv", ["--reuid=\(user.pw_uid)", "--regid=\(user.pw_gid)", "--clear-groups", "/usr/bin/id", "-u"])
    try #require(probe.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "\(user.pw_uid)", "\(probe)")
    try expectReadCommandsWork(asUser, treeDigest: digest, output: output)
    let pushed = try asUser(["push", "--app", "inventory", "--env", "staging", Harness.samples + "/staging"])
    #expect(pushed.status == 77, "\(pushed)")
    #expect(pushed.stderr.contains("the store `\(source)` is not writable by this user"), "\(pushed)")
    #expect(try contents(of: source) == before, "nothing in the store folder changed")
  }

  @Test(
    "on a full disk every read command works and the database stays byte for byte; a push exits 74",
    .enabled(if: geteuid() == 0, "mounting needs root"))
  func fullDisk() throws {
    let scratch = try TemporaryFolder()
    let disk = scratch.file("disk")
    let output = scratch.file("out")
    try FileManager.default.createDirectory(atPath: disk, withIntermediateDirectories: true)
    try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
    let mounted = try Harness.shell("mount -t tmpfs -o size=2m tmpfs '\(disk)'")
    defer { _ = try? Harness.shell("umount '\(disk)'") }
    try #require(mounted.status == 0, "\(mounted)")
    let environment = ["CONFVAULT_STORE": disk + "/store", "CONFVAULT_AUTHOR": "ana"]
    let run = { (arguments: [String]) throws -> Outcome in try Harness.confvault(arguments, environment: environment) }
    let changed = scratch.file("production-2")
    #expect(try Harness.shell("cp -r '\(Harness.samples)/production' '\(changed)'").status == 0)
    try Data("level: warn\n".utf8).write(to: URL(fileURLWithPath: changed + "/settings/logging.yaml"))
    for arguments in [
      ["init", "--app", "inventory"],
      ["push", "--yes", "--app", "inventory", "--env", "production", Harness.samples + "/production", "-m", "first"],
      ["push", "--yes", "--app", "inventory", "--env", "production", changed, "-m", "second"],
    ] {
      let outcome = try run(arguments)
      try #require(outcome.status == 0, "\(outcome)")
    }
    let versions = try JSONSerialization.jsonObject(with: run(["versions", "--app", "inventory", "--json"]).stdoutData)
    let digest = try #require((versions as? [[String: Any]])?.first?["treeDigest"] as? String)
    // dd ends with "No space left on device" once the disk is full.
    _ = try Harness.shell("dd if=/dev/zero of='\(disk)/filler' bs=4096 2>/dev/null")
    // Not the `-shm` file: it is SQLite's shared memory, where a reader that may write it marks the
    // snapshot it reads.
    let database = { try contents(of: disk + "/store").filter { !$0.key.hasSuffix("-shm") } }
    let before = try database()
    #expect(before.keys.sorted() == ["confvault.sqlite", "confvault.sqlite-wal"])

    try expectReadCommandsWork(run, treeDigest: digest, output: output)
    let pushed = try run(["push", "--app", "inventory", "--env", "staging", Harness.samples + "/staging"])
    #expect(pushed.status == 74 && pushed.stderr.contains("is full"), "\(pushed)")
    #expect(try database() == before, "the database and its WAL are as they were")
  }

  @Test("a store a newer confvault migrated is refused by readers and writers, naming the migration, unchanged")
  func newerStore() throws {
    let store = try storeWithTwoVersions()
    try store.tamper("c.execute(\"INSERT INTO grdb_migrations VALUES ('v99-from-the-future')\")")
    let database = store.environment["CONFVAULT_STORE"]! + "/confvault.sqlite"
    let before = try Data(contentsOf: URL(fileURLWithPath: database))
    let versions = try store.run(["versions", "--app", "inventory"])
    let pushed = try store.run(["push", "--app", "inventory", "--env", "staging", Harness.samples + "/staging"])
    for outcome in [versions, pushed] {
      #expect(outcome.status == 1, "\(outcome)")
      #expect(outcome.stderr.contains("`v99-from-the-future`"), "\(outcome)")
      #expect(outcome.stderr.contains("newer confvault") && outcome.stderr.contains("upgrade confvault"), "\(outcome)")
    }
    #expect(try Data(contentsOf: URL(fileURLWithPath: database)) == before, "the database file is byte for byte")
  }

  @Test(
    "an export stopped by SIGINT or SIGTERM removes its temporary file and ends by the signal",
    arguments: [SIGINT, SIGTERM])
  func interruptedExport(signal: Int32) throws {
    let store = try StoreFixture()
    let big = store.folder.file("big")
    let made = try Harness.shell(
      "mkdir -p '\(big)' && for i in $(seq 1 24); do head -c 1000000 /dev/urandom > '\(big)'/f$i.bin; done")
    #expect(made.status == 0)
    try store.ok(["push", "--yes", "--app", "inventory", "--env", "production", big])
    let output = store.folder.file("out")
    try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: Harness.binary)
    process.arguments = [
      "export", "--app", "inventory", "--env", "production", "--compression", "xz", "-o", output + "/big.tar.xz",
    ]
    process.environment = ProcessInfo.processInfo.environment.merging(store.environment) { _, new in new }
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    // xz of 24 MB of random bytes takes seconds: stop it once its temporary file is there.
    var writing = false
    for _ in 0..<400 where !writing {
      writing =
        (try? FileManager.default.contentsOfDirectory(atPath: output))?.contains { $0.contains(".tmp-") } == true
      if !writing { Thread.sleep(forTimeInterval: 0.025) }
    }
    kill(process.processIdentifier, signal)
    process.waitUntilExit()
    #expect(writing, "the export was stopped while it wrote")
    #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == signal)
    #expect(try FileManager.default.contentsOfDirectory(atPath: output).isEmpty, "no temporary file, no archive")
  }

  @Test("an export removes a dead process's temporary file in its folder and keeps a running one's")
  func staleTemporaryFiles() throws {
    let store = try StoreFixture()
    try store.ok(["push", "--yes", "--app", "inventory", "--env", "production", Harness.samples + "/production"])
    let output = store.folder.file("out")
    try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
    // 4194305 is above Linux's largest process id (2^22): that process is gone for sure.
    let dead = ".x.tar.gz.tmp-4194305-1"
    let live = ".x.tar.gz.tmp-\(getpid())-1"
    for name in [dead, live] {
      #expect(FileManager.default.createFile(atPath: output + "/" + name, contents: Data("partial".utf8)))
    }
    try store.ok(["export", "--app", "inventory", "--env", "production", "-o", output + "/production.tar.gz"])
    #expect(try FileManager.default.contentsOfDirectory(atPath: output).sorted() == [live, "production.tar.gz"])
  }
}
