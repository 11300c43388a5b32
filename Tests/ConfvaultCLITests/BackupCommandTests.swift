import Foundation
import Testing

/// `confvault backup` through the built binary.
@Suite struct BackupCommandTests {
  /// A store with heads in development and production, and a backup folder.
  func prepared() throws -> (StoreFixture, String) {
    let store = try StoreFixture()
    try store.ok(["push", "--app", "inventory", "--env", "development", Harness.samples + "/development"])
    try store.ok(["push", "--yes", "--app", "inventory", "--env", "production", Harness.samples + "/production"])
    return (store, store.folder.file("backups"))
  }

  func files(_ folder: String) throws -> [String] {
    let outcome = try Harness.shell("cd '\(folder)' && find . -type f | sed 's|^./||' | sort")
    return outcome.stdout.split(separator: "\n").map(String.init)
  }

  /// The files in an environment's backup folder whose names are backup names, in either layout: the
  /// time first (written now) or the version first (written by earlier versions).
  func backupFiles(_ folder: String, _ environment: String) throws -> [String] {
    try files(folder + "/inventory/" + environment).filter {
      $0.range(
        of: #"^[0-9]{8}T[0-9]{6}Z-inventory-\#(environment)-v[1-9][0-9]*\.tar(\.gz|\.zst|\.xz)?$"#,
        options: .regularExpression) != nil
        || $0.range(
          of: #"^inventory-\#(environment)-v[1-9][0-9]*-[0-9]{8}T[0-9]{6}Z\.tar(\.gz|\.zst|\.xz)?$"#,
          options: .regularExpression) != nil
    }
  }

  /// A production backup's name for a time `secondsAgo` ago: the time first, as written now, or the
  /// version first, as earlier versions wrote it.
  func backupName(version: Int, secondsAgo: Double, timeFirst: Bool = true) -> String {
    let stamp = ISO8601DateFormatter().string(from: Date(timeIntervalSinceNow: -secondsAgo))
      .replacingOccurrences(of: "-", with: "").replacingOccurrences(of: ":", with: "")
    return timeFirst
      ? "\(stamp)-inventory-production-v\(version).tar.zst" : "inventory-production-v\(version)-\(stamp).tar.zst"
  }

  @Test("two runs with no change write one file; a push between them writes a second")
  func unchangedAndChanged() throws {
    let (store, backups) = try prepared()
    let first = try store.ok(["backup", "--to", backups])
    #expect(first.contains("inventory/production  written  v2"))
    let second = try store.ok(["backup", "--to", backups])
    #expect(second.contains("inventory/production  unchanged  v2  unchanged since "))
    #expect(try backupFiles(backups, "production").count == 1)
    let folder = try store.copy("production", to: "prod")
    try Data("extra: true\n".utf8).write(to: URL(fileURLWithPath: folder + "/extra.yaml"))
    try store.ok(["push", "--yes", "--app", "inventory", "--env", "production", folder])
    let third = try store.ok(["backup", "--to", backups, "--env", "production"])
    #expect(third.contains("inventory/production  written  v3"))
    let written = try backupFiles(backups, "production")
    #expect(written.count == 2)
    #expect(
      written.allSatisfy {
        $0.range(of: #"^\d{8}T\d{6}Z-inventory-production-v[23]\.tar\.zst$"#, options: .regularExpression) != nil
      })
    #expect(try backupFiles(backups, "development").count == 1, "--env production left development alone")
    let typo = try store.run(["backup", "--to", backups, "--env", "prodution"])
    #expect(typo.status == 1, "a misspelt environment is an error, not an empty run: \(typo)")
    #expect(
      typo.stderr.contains(
        "no environment 'prodution' in the selected apps; environments: development, staging, production"))
    let audit = try store.json(["audit", "--app", "inventory"]) as? [[String: Any]] ?? []
    #expect(audit.filter { $0["action"] as? String == "backup" }.count == 5)
  }

  @Test("retention keeps what the rules say, over both name layouts in one folder, never files it did not write")
  func retention() throws {
    let (store, backups) = try prepared()
    let folder = backups + "/inventory/production"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    var synthetic: [String] = []
    for day in 1...10 {
      // Odd days in the layout of earlier versions, even days in today's: one folder after an upgrade.
      let name = backupName(version: 1, secondsAgo: Double(day) * 86_400 + 3_600, timeFirst: day % 2 == 0)
      try Data("old".utf8).write(to: URL(fileURLWithPath: folder + "/" + name))
      synthetic.append(name)
    }
    for foreign in [
      "notes.txt", "inventory-production-latest.tar.zst", "inventory-production-v1-20200101T000000Z.tar.zst.bak",
    ] {
      try Data("mine".utf8).write(to: URL(fileURLWithPath: folder + "/" + foreign))
    }
    let dry = try store.ok(["backup", "--to", backups, "--env", "production", "--keep-last", "3", "--dry-run"])
    #expect(dry.contains("would write") && dry.contains("would delete"))
    #expect(try backupFiles(backups, "production").count == 10, "a dry run changes nothing")

    let output = try store.ok(["backup", "--to", backups, "--env", "production", "--keep-last", "3"])
    #expect(output.components(separatedBy: "(retention)").count - 1 == 8)
    let kept = try files(folder)
    #expect(kept.contains(synthetic[0]) && kept.contains(synthetic[1]) && !kept.contains(synthetic[2]), "\(kept)")
    #expect(!kept.contains(synthetic[3]) && !kept.contains(synthetic[9]), "older ones of both layouts deleted")
    #expect(
      kept.filter { $0.hasSuffix("-inventory-production-v2.tar.zst") }.count == 1, "the backup just written is kept")
    for foreign in [
      "notes.txt", "inventory-production-latest.tar.zst", "inventory-production-v1-20200101T000000Z.tar.zst.bak",
    ] {
      #expect(kept.contains(foreign), "\(foreign) was not written by confvault and stays")
    }
    Thread.sleep(forTimeInterval: 1.1)  // a second backup of the same version needs another second in its name
    try store.ok(["backup", "--to", backups, "--env", "production", "--keep-within", "3d", "--always"])
    let remaining = try backupFiles(backups, "production")
    #expect(remaining.count == 4, "the two written now, and those 1 and 2 days old: \(remaining)")
  }

  @Test("a run whose backup fails deletes nothing and exits 1; the other environments are backed up")
  func failedBackupDeletesNothing() throws {
    let (store, backups) = try prepared()
    try store.ok(["backup", "--to", backups])
    let folder = try store.copy("production", to: "prod")
    try Data("damaged: soon\n".utf8).write(to: URL(fileURLWithPath: folder + "/damaged.yaml"))
    try store.ok(["push", "--yes", "--app", "inventory", "--env", "production", folder])
    // Damage the stored content of damaged.yaml so that writing its archive fails.
    let damaged = try store.tamper(
      "k=hashlib.sha256(b'damaged: soon\\n').digest(); print(c.execute('UPDATE blob_chunk SET zstd=0, data=? WHERE id=(SELECT first_chunk FROM blob WHERE sha256=?)', (b'tampered: yes\\n', k)).rowcount)"
    )
    #expect(damaged == "1", "one stored chunk damaged")
    let before = try backupFiles(backups, "production")
    let outcome = try store.run(["backup", "--to", backups, "--keep-last", "1", "--always"])
    #expect(outcome.status == 1, "\(outcome)")
    #expect(
      outcome.stderr.contains("backup of inventory/production failed")
        && outcome.stderr.contains("changed while it was being archived"), "the message says why: \(outcome.stderr)"
    )
    #expect(try backupFiles(backups, "production") == before, "the older backup is untouched, no partial file")
    #expect(outcome.stdout.contains("inventory/development  "), "development was backed up: \(outcome)")
    #expect(!outcome.stderr.contains("inventory/development"))
    let state =
      try JSONSerialization.jsonObject(
        with: Data(contentsOf: URL(fileURLWithPath: backups + "/.confvault-backup.json"))) as? [String: Any]
    let production = (state?["environments"] as? [String: Any])?["inventory/production"] as? [String: Any]
    #expect(production?["failuresTotal"] as? Int == 1 && production?["lastError"] is String)
    #expect(try store.run(["check"]).status == 1, "check finds the damaged blob")
  }

  @Test("the backup just written is kept even when an older file's name claims a later time")
  func futureDatedFile() throws {
    let (store, backups) = try prepared()
    try store.ok(["backup", "--to", backups, "--env", "production"])
    let folder = backups + "/inventory/production"
    let old = try #require(try backupFiles(backups, "production").first)
    try FileManager.default.moveItem(
      atPath: folder + "/" + old, toPath: folder + "/inventory-production-v2-20300101T000000Z.tar.zst")
    let changed = try store.copy("production", to: "prod")
    try Data("more: 1\n".utf8).write(to: URL(fileURLWithPath: changed + "/more.yaml"))
    try store.ok(["push", "--yes", "--app", "inventory", "--env", "production", changed])
    let output = try store.ok(["backup", "--to", backups, "--env", "production", "--keep-last", "1"])
    #expect(output.contains("written  v3"))
    let remaining = try backupFiles(backups, "production")
    #expect(
      remaining.contains { $0.hasSuffix("-inventory-production-v3.tar.zst") },
      "the verified backup of the head stays: \(remaining)")
  }

  @Test("a held lock gives exit 75, or is waited for with --wait")
  func lock() throws {
    let (store, backups) = try prepared()
    try FileManager.default.createDirectory(atPath: backups, withIntermediateDirectories: true)
    let holder = Process()
    holder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    holder.arguments = [
      "python3", "-c",
      "import fcntl,sys,time; f=open(sys.argv[1],'w'); fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(float(sys.argv[2]))",
      backups + "/.confvault-backup.lock", "6",
    ]
    let ready = Pipe()
    holder.standardOutput = ready
    try holder.run()
    _ = ready.fileHandleForReading.availableData
    let refused = try store.run(["backup", "--to", backups])
    #expect(refused.status == 75, "\(refused)")
    #expect(refused.stderr.contains("another backup is running"))
    let waited = try store.run(["backup", "--to", backups, "--wait", "20"])
    #expect(waited.status == 0, "\(waited)")
    holder.waitUntilExit()
  }

  @Test("a run killed mid-write leaves no file at a backup name and does not block the next run")
  func killedRun() throws {
    let store = try StoreFixture()
    let big = store.folder.file("big")
    #expect(
      try Harness.shell(
        "mkdir -p '\(big)' && for i in $(seq 1 24); do head -c 1000000 /dev/urandom > '\(big)'/f$i.bin; done"
      )
      .status == 0)
    try store.ok(["push", "--yes", "--app", "inventory", "--env", "production", big])
    let backups = store.folder.file("backups")
    let process = Process()
    process.executableURL = URL(fileURLWithPath: Harness.binary)
    process.arguments = ["backup", "--to", backups, "--compression", "xz"]
    process.environment = ProcessInfo.processInfo.environment.merging(store.environment) { _, new in new }
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    let folder = backups + "/inventory/production"
    // Wait until the temporary file exists (xz of 24 MB of random bytes takes seconds), then kill.
    var started = false
    for _ in 0..<200 {
      if (try? FileManager.default.contentsOfDirectory(atPath: folder))?.contains(where: { $0.contains(".tmp-") })
        == true
      {
        started = true
        break
      }
      Thread.sleep(forTimeInterval: 0.05)
    }
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
    #expect(started, "the run was killed while writing")
    #expect(try backupFiles(backups, "production").isEmpty, "nothing at a backup name")
    let next = try store.ok(["backup", "--to", backups])
    #expect(next.contains("inventory/production  written"))
    #expect(try files(folder).count == 1, "the next run removed the killed run's temporary file")
  }

  @Test("a read-only folder and a full disk give clear errors, 73 and 74, and leave older backups untouched")
  func readOnlyAndFull() throws {
    let (store, _) = try prepared()
    let mount = store.folder.file("mnt")
    try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
    #expect(try Harness.shell("mount -t tmpfs -o size=64k,ro tmpfs '\(mount)'").status == 0, "tests run as root")
    let readOnly = try store.run(["backup", "--to", mount + "/backups"])
    _ = try Harness.shell("umount '\(mount)'")
    #expect(readOnly.status == 73, "\(readOnly)")
    #expect(readOnly.stderr.contains("Read-only file system"), "\(readOnly)")

    #expect(try Harness.shell("mount -t tmpfs -o size=96k tmpfs '\(mount)'").status == 0)
    defer { _ = try? Harness.shell("umount '\(mount)'") }
    try store.ok(["backup", "--to", mount, "--env", "production"])
    let before = try backupFiles(mount, "production")
    let big = try store.copy("production", to: "prod")
    #expect(try Harness.shell("head -c 300000 /dev/urandom > '\(big)/large.bin'").status == 0)
    try store.ok(["push", "--yes", "--app", "inventory", "--env", "production", big])
    let full = try store.run(["backup", "--to", mount, "--env", "production", "--keep-last", "1"])
    #expect(full.status == 74, "\(full)")
    #expect(full.stderr.contains("No space left on device"), "\(full)")
    #expect(try backupFiles(mount, "production") == before)
    #expect(try files(mount + "/inventory/production").count == 1, "no partial or temporary file left")
  }

  @Test("the metrics file is Prometheus text format with the four metrics per environment")
  func metrics() throws {
    let (store, backups) = try prepared()
    let metrics = store.folder.file("confvault.prom")
    try store.ok(["backup", "--to", backups, "--metrics-file", metrics])
    let text = try String(contentsOfFile: metrics, encoding: .utf8)
    let name = #"[a-zA-Z_:][a-zA-Z0-9_:]*"#
    let label = #"[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*""#
    let sample = "^\(name)(\\{\(label)(,\(label))*\\})? -?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?$"
    var typed: Set<String> = []
    for line in text.split(separator: "\n").map(String.init) {
      if line.hasPrefix("# HELP ") { continue }
      if line.hasPrefix("# TYPE ") {
        let parts = line.split(separator: " ")
        #expect(parts.count == 4 && ["gauge", "counter"].contains(parts[3]), "\(line)")
        typed.insert(String(parts[2]))
        continue
      }
      #expect(line.range(of: sample, options: .regularExpression) != nil, "not a sample line: \(line)")
      #expect(typed.contains(String(line.prefix { $0 != "{" && $0 != " " })), "sample before its TYPE: \(line)")
    }
    for metric in [
      "confvault_backup_last_success_timestamp_seconds", "confvault_backup_last_size_bytes",
      "confvault_backup_duration_seconds", "confvault_backup_failures_total",
    ] {
      #expect(text.contains("\(metric){app=\"inventory\",env=\"production\"} "), "\(metric)")
    }
    let success = text.split(separator: "\n").first {
      $0.hasPrefix("confvault_backup_last_success_timestamp_seconds{app=\"inventory\",env=\"production\"}")
    }
    let seconds = Double(success?.split(separator: " ").last ?? "") ?? 0
    #expect(abs(seconds - Date().timeIntervalSince1970) < 600)
  }

  @Test("a backup file imports back into another environment with the same tree digest")
  func importBack() throws {
    let (store, backups) = try prepared()
    try store.ok(["backup", "--to", backups, "--env", "production", "--json"])
    let file = try #require(try backupFiles(backups, "production").first)
    let imported = try store.ok([
      "import", backups + "/inventory/production/" + file, "--app", "inventory", "--env", "staging",
    ])
    #expect(imported.contains("imported as v3"))
    let versions = try store.versions()
    #expect(
      versions[0]["treeDigest"] as? String == versions.first { $0["number"] as? Int == 2 }?["treeDigest"] as? String)
  }

  @Test("a version over a limit fails its backup with 65, naming the file, the limit and the flag; nothing is left")
  func overLimit() throws {
    let (store, backups) = try prepared()
    let folder = try store.copy("production", to: "prod")
    #expect(try Harness.shell("head -c 5000 /dev/urandom > '\(folder)/big.bin'").status == 0)
    try store.ok(["push", "--yes", "--app", "inventory", "--env", "production", folder])
    let refused = try store.run(["backup", "--to", backups, "--max-file-size", "4096"])
    #expect(refused.status == 65, "a refused archive, not 74 (disk full): \(refused)")
    #expect(
      refused.stderr.contains("backup of inventory/production failed") && refused.stderr.contains("config/big.bin")
        && refused.stderr.contains("limit 4096") && refused.stderr.contains("raise the limit with --max-file-size"),
      "the file, the limit and the flag: \(refused.stderr)")
    #expect(!refused.stderr.contains("did not read back as version"), "\(refused.stderr)")
    #expect(
      refused.stdout.contains("inventory/development  written  v1"), "development is within the limit: \(refused)")
    #expect(try backupFiles(backups, "production").isEmpty, "the refused file was removed")
    #expect(try files(backups + "/inventory/production").isEmpty, "no temporary file either")

    let tooMany = try store.run(["backup", "--to", backups, "--max-files", "31", "--json"])
    #expect(tooMany.status == 65, "\(tooMany)")
    let outcomes = try JSONSerialization.jsonObject(with: tooMany.stdoutData) as? [[String: Any]] ?? []
    let production = outcomes.first { $0["environment"] as? String == "production" }
    #expect(production?["status"] as? String == "failed" && production?["failureKind"] as? String == "badInput")
    let message = production?["message"] as? String ?? ""
    #expect(message.contains("32 files, limit 31"), "\(tooMany)")
    #expect(outcomes.first { $0["environment"] as? String == "development" }?["status"] as? String == "unchanged")

    let total = try store.run(["backup", "--to", backups, "--max-total-size", "1000"])
    #expect(total.status == 65, "every environment refused, each for the same reason: \(total)")
    #expect(total.stderr.components(separatedBy: "raise the limit with --max-total-size").count == 3, "\(total.stderr)")
    #expect(try backupFiles(backups, "development").count == 1, "the good backup of development stays")

    let invalid = try store.run(["backup", "--to", backups, "--max-file-size", "0"])
    #expect(invalid.status == 64, "\(invalid)")
    let within = try store.ok(["backup", "--to", backups])
    #expect(within.contains("inventory/production  written  v3"), "within the default limits it backs up: \(within)")
  }

  @Test("the cron sample runs as written under cron's minimal environment")
  func cronSample() throws {
    let (store, _) = try prepared()
    let crontab = try String(contentsOfFile: Harness.packageRoot + "/Samples/cron/crontab", encoding: .utf8)
    // What cron gives a job before the crontab's own variables: no login profile, no CONFVAULT_STORE.
    var variables = ["HOME=" + store.folder.path, "LOGNAME=root", "SHELL=/bin/sh", "PATH=/usr/bin:/bin"]
    var jobs: [String] = []
    for line in crontab.split(separator: "\n").map(String.init) where !line.hasPrefix("#") && !line.isEmpty {
      if line.range(of: #"^[A-Za-z_][A-Za-z0-9_]*="#, options: .regularExpression) != nil {
        variables.append(line)
      } else {
        jobs.append(line.split(separator: " ", maxSplits: 5).last.map(String.init) ?? "")
      }
    }
    let job = try #require(jobs.count == 1 ? jobs.first : nil, "one job: \(jobs)")
    #expect(job.hasPrefix("/usr/local/bin/confvault backup "), "the binary by its absolute path: \(job)")
    #expect(variables.contains { $0.hasPrefix("PATH=") && $0.contains("/usr/local/bin") }, "\(variables)")
    #expect(variables.contains { $0.hasPrefix("CONFVAULT_STORE=/") }, "\(variables)")
    // The sample's paths, moved into this test's folder.
    let moves = [
      ("/usr/local/bin/confvault", Harness.binary), ("/var/lib/confvault", store.environment["CONFVAULT_STORE"]!),
      ("/var/backups/confvault", store.folder.file("backups")),
      ("/var/lib/node_exporter/textfile_collector", store.folder.path),
    ]
    let moved = { (text: String) in moves.reduce(text) { $0.replacingOccurrences(of: $1.0, with: $1.1) } }
    let outcome = try Harness.run("/usr/bin/env", ["-i"] + variables.map(moved) + ["/bin/sh", "-c", moved(job)])
    #expect(outcome.status == 0 && outcome.stdout.isEmpty && outcome.stderr.isEmpty, "\(outcome)")
    #expect(try backupFiles(store.folder.file("backups"), "production").count == 1)
    #expect(store.folder.exists("confvault.prom"))
  }
}
