import ConfvaultCore
import ConfvaultSQLite
import ConfvaultTestSupport
import Foundation
import Logging
import Testing

/// `confvault store copy`: a store copied SQLite → SQLite and SQLite → PostgreSQL → SQLite reads the
/// same through every command that shows history, and `check` passes on each copy.
@Suite struct StoreCopyTests {
  /// Runs confvault on the store `store` (a folder or a postgres:// URL).
  @discardableResult
  static func run(_ arguments: [String], store: String, in folder: TemporaryFolder) throws -> Outcome {
    var environment = ["CONFVAULT_STORE": store, "CONFVAULT_AUTHOR": "ana", "CONFVAULT_LOCK_TIMEOUT": "60"]
    environment["TMPDIR"] = folder.path  // a PostgreSQL store's staging folder
    return try Harness.confvault(arguments, environment: environment)
  }

  /// Copies `from` into `to` with the binary; the copy must succeed.
  @discardableResult
  static func copy(_ from: String, _ to: String, in folder: TemporaryFolder) throws -> Outcome {
    let outcome = try Harness.confvault(
      ["store", "copy", "--from", from, "--to", to], environment: ["TMPDIR": folder.path])
    #expect(outcome.status == 0, "store copy \(from) → \(to): \(outcome)")
    return outcome
  }

  /// What the commands that show history print for `apps` of `store`, as JSON: each app's versions
  /// (with their tree digests, pins and sync dates) and environments (production, heads), the whole
  /// audit log (ids included), and what `check` counts. `check` must pass.
  static func view(_ store: String, apps: [String], in folder: TemporaryFolder) throws -> [String: String] {
    var view: [String: String] = [:]
    func json(_ arguments: [String]) throws -> String {
      let outcome = try run(arguments + ["--json"], store: store, in: folder)
      #expect(outcome.status == 0, "\(arguments) on \(store): \(outcome)")
      return outcome.stdout
    }
    for app in apps {
      view["versions \(app)"] = try json(["versions", "--app", app, "--limit", "100000"])
      view["env \(app)"] = try json(["env", "list", "--app", app])
    }
    view["audit"] = try json(["audit", "--limit", "1000000"])
    let check = try JSONSerialization.jsonObject(with: Data(try json(["check"]).utf8)) as? [String: Any]
    #expect((check?["problems"] as? [Any])?.isEmpty == true, "check on \(store): \(check ?? [:])")
    // A copy stores the contents versions use: one the source holds for no version is not copied.
    let used = (check?["blobs"] as? Int ?? -1) - (check?["unreferencedBlobs"] as? Int ?? 0)
    view["check"] = "\(check?["versions"] ?? "?") versions, \(used) contents in use"
    return view
  }

  /// Expects two views to be equal, naming the first line that differs in each part that does.
  static func expectSame(
    _ view: [String: String], _ expected: [String: String], sourceLocation: SourceLocation = #_sourceLocation
  ) {
    #expect(view.keys.sorted() == expected.keys.sorted(), sourceLocation: sourceLocation)
    for (part, text) in expected.sorted(by: { $0.key < $1.key }) {
      let lines = text.split(separator: "\n").map(String.init)
      let other = (view[part] ?? "").split(separator: "\n").map(String.init)
      guard lines != other else { continue }
      let index = (0..<min(lines.count, other.count)).first { lines[$0] != other[$0] } ?? min(lines.count, other.count)
      let found = index < other.count ? other[index] : "(end)"
      let wanted = index < lines.count ? lines[index] : "(end)"
      Issue.record(
        "\(part) differs at line \(index + 1): \(found) instead of \(wanted)", sourceLocation: sourceLocation)
    }
  }

  /// The sample app's history as the tour makes it, and more: pushes, a sync, an export and its
  /// import, a restore, a second sync, a backup run, an environment made, used and deleted, and a
  /// second app.
  static func sampleStore() throws -> StoreFixture {
    let store = try StoreFixture()
    let samples = Harness.samples
    try store.ok(["push", "--app", "inventory", "--env", "development", samples + "/development", "-m", "initial"])
    try store.ok(["sync", "--app", "inventory", "1", "--yes"])
    let changed = try store.copy("development", to: "development")
    try String(contentsOfFile: changed + "/settings/app.yaml", encoding: .utf8)
      .replacingOccurrences(of: "level: debug", with: "level: trace")
      .write(toFile: changed + "/settings/app.yaml", atomically: true, encoding: .utf8)
    try store.ok(["push", "--app", "inventory", "--env", "development", changed, "-m", "trace logging"])
    let archive = store.folder.file("production.tar.gz")
    try store.ok(["export", "--app", "inventory", "--env", "production", "-o", archive])
    try store.ok(["import", archive, "--app", "inventory", "--env", "staging", "-m", "staging = production"])
    try store.ok(["restore", "--app", "inventory", "1", "--env", "development"])
    try store.ok(["sync", "--app", "inventory", "2", "--yes"])
    try store.ok(["backup", "--to", store.folder.file("backups")])
    try store.ok(["env", "create", "--app", "inventory", "qa"])
    try store.ok(["push", "--app", "inventory", "--env", "qa", samples + "/staging"])
    try store.ok(["env", "delete", "--app", "inventory", "qa"])
    try store.ok(["init", "--app", "billing", "--env", "live", "--production", "live"])
    try store.ok(["push", "--app", "billing", "--env", "live", samples + "/production", "--yes"])
    return store
  }

  @Test("the sample store copied SQLite → SQLite and SQLite → PostgreSQL → SQLite reads the same")
  func sampleStoreRoundTrip() throws {
    let fixture = try Self.sampleStore()
    let source = fixture.environment["CONFVAULT_STORE"]!
    let folder = fixture.folder
    let apps = ["inventory", "billing"]
    let expected = try Self.view(source, apps: apps, in: folder)
    let versions =
      try JSONSerialization.jsonObject(with: Data(expected["versions inventory"]!.utf8)) as? [[String: Any]]
    #expect(versions?.contains { $0["restoredFrom"] as? Int == 1 } == true, "the history has a restore")
    #expect(versions?.contains { $0["syncedAt"] is String && $0["backup"] as? Bool == true } == true)
    #expect(expected["check"]?.hasPrefix("6 versions") == true, "\(expected["check"] ?? "")")

    let copied = try Self.copy(source, folder.file("copy"), in: folder)
    #expect(copied.stdout.contains("copied app 'inventory': 3 environments, 5 versions"), "\(copied)")
    Self.expectSame(try Self.view(folder.file("copy"), apps: apps, in: folder), expected)

    let database = try PostgresCluster.shared().newDatabaseURL()
    try Self.copy(source, database, in: folder)
    Self.expectSame(try Self.view(database, apps: apps, in: folder), expected)
    try Self.copy(database, folder.file("back"), in: folder)
    Self.expectSame(try Self.view(folder.file("back"), apps: apps, in: folder), expected)

    // The content too: each copy exports the archive the source exports, byte for byte.
    var archives: [Data] = []
    for (index, store) in [source, database, folder.file("back")].enumerated() {
      let archive = folder.file("v3-\(index).tar.gz")
      #expect(
        try Self.run(["export", "--app", "inventory", "--version", "3", "-o", archive], store: store, in: folder).status
          == 0)
      archives.append(try folder.bytes("v3-\(index).tar.gz"))
    }
    #expect(archives[0].count > 1000 && archives[1] == archives[0] && archives[2] == archives[0])
  }

  @Test("a store is copied only into an empty store: a full one is refused with 73 and left as it is")
  func refusesNonEmptyTarget() throws {
    let source = try StoreFixture()
    try source.ok(["push", "--app", "inventory", "--env", "development", Harness.samples + "/development"])
    let target = try StoreFixture(app: "billing")
    let before = try Self.view(target.environment["CONFVAULT_STORE"]!, apps: ["billing"], in: target.folder)
    let refused = try Harness.confvault([
      "store", "copy", "--from", source.environment["CONFVAULT_STORE"]!, "--to", target.environment["CONFVAULT_STORE"]!,
    ])
    #expect(refused.status == 73, "\(refused)")
    #expect(refused.stderr.contains("not empty") && refused.stderr.contains("'billing'"), "\(refused)")
    Self.expectSame(try Self.view(target.environment["CONFVAULT_STORE"]!, apps: ["billing"], in: target.folder), before)
    #expect(
      try Self.run(
        ["versions", "--app", "inventory"], store: target.environment["CONFVAULT_STORE"]!, in: target.folder
      ).status == 1)

    let same = try Harness.confvault([
      "store", "copy", "--from", source.environment["CONFVAULT_STORE"]!, "--to", source.environment["CONFVAULT_STORE"]!,
    ])
    #expect(same.status == 64 && same.stderr.contains("same store"), "\(same)")
    let missing = try Harness.confvault([
      "store", "copy", "--from", source.folder.file("nothing"), "--to", source.folder.file("copy"),
    ])
    #expect(missing.status == 66 && !source.folder.exists("copy"), "\(missing)")
  }

  /// A store of 1,000 versions of the app `big`, made in process (a thousand pushes of the binary take
  /// minutes): 40 files in 8 folders, one changed per version; every 100th version synced to production,
  /// every 50th restored from an older one, an export noted every 250.
  static func thousandVersionStore(in folder: TemporaryFolder) async throws -> String {
    let path = folder.file("big")
    let store = try SQLiteStore(folder: path, create: true, logger: Logger(label: "test"))
    var clock = Date(timeIntervalSince1970: 1_800_000_000)
    func change(_ operation: StoreChange.Operation) -> StoreChange {
      clock += 61
      return StoreChange(operation, author: "ana", at: clock, detail: "made by the test")
    }
    try await store.apply(change(.createApp(name: "big", environments: ["dev", "prod"], production: "prod")))
    var files: [String: ManifestFile] = [:]
    func write(_ path: String, _ text: String) throws -> BlobFile {
      let data = Data(text.utf8)
      let digest = SHA256Hex.of(data)
      let onDisk = folder.file("blob-" + digest.value)
      try data.write(to: URL(fileURLWithPath: onDisk))
      files[path] = ManifestFile(path: path, size: Int64(data.count), mode: .regular, sha256: digest)
      return BlobFile(sha256: digest, size: Int64(data.count), path: onDisk)
    }
    var blobs: [BlobFile] = []
    for index in 0..<40 { blobs.append(try write("folder\(index % 8)/file\(index).yaml", "file: \(index)\n")) }
    try await store.storeBlobs(blobs)
    var devHead: Int?
    var prodHead: Int?
    for number in 1...1000 {
      let sorted = files.values.sorted { EntryPath.byteOrder($0.path, $1.path) }
      var draft = VersionDraft(
        app: "big", environment: "dev", comment: "change \(number)", origin: .push, files: sorted)
      if number % 50 == 0 {
        draft.origin = .restore
        draft.restoredFrom = number - 7
        draft.files = try await store.files(app: "big", number: number - 7)
      } else {
        let index = number % 40
        try await store.storeBlobs([
          try write("folder\(index % 8)/file\(index).yaml", "file: \(index)\nversion: \(number)\n")
        ])
        draft.files = files.values.sorted { EntryPath.byteOrder($0.path, $1.path) }
      }
      devHead = try await store.apply(change(.addVersion(draft, expectedHead: devHead)))!.number
      if number % 100 == 0 {
        try await store.apply(change(.sync(app: "big", environment: "prod", number: number, expectedHead: prodHead)))
        prodHead = number
      }
      if number % 250 == 0 {
        try await store.apply(change(.note(app: "big", environment: "dev", action: .export, version: number)))
      }
    }
    return path
  }

  @Test("a 1,000-version store copied SQLite → PostgreSQL → SQLite keeps its versions, digests and audit")
  func thousandVersions() async throws {
    let folder = try TemporaryFolder()
    let source = try await Self.thousandVersionStore(in: folder)
    let expected = try Self.view(source, apps: ["big"], in: folder)
    #expect(expected["check"]?.hasPrefix("1000 versions") == true, "\(expected["check"] ?? "")")

    let database = try PostgresCluster.shared().newDatabaseURL()
    let there = try Harness.confvault(
      ["store", "copy", "--from", source, "--to", database, "--json"], environment: ["TMPDIR": folder.path])
    #expect(there.status == 0, "\(there)")
    let summary = try JSONSerialization.jsonObject(with: there.stdoutData) as? [String: Any]
    #expect(summary?["versions"] as? Int == 1000 && summary?["apps"] as? Int == 1, "\(there.stdout)")
    #expect((summary?["auditEntries"] as? Int ?? 0) > 1000, "\(there.stdout)")
    Self.expectSame(try Self.view(database, apps: ["big"], in: folder), expected)

    let back = folder.file("back")
    let quiet = try Harness.confvault(
      ["store", "copy", "--from", database, "--to", back, "--quiet"], environment: ["TMPDIR": folder.path])
    #expect(quiet.status == 0 && quiet.stdout.isEmpty, "\(quiet)")
    Self.expectSame(try Self.view(back, apps: ["big"], in: folder), expected)
  }
}
