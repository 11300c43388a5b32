import ConfvaultCore
import ConfvaultSQLite
import Foundation
import Logging
import Testing

/// Every use case of `Vault`, in process, over a real SQLite store: what the CLI and a server call.
@Suite struct VaultTests {
  let logger = Logger(label: "vault-test")

  /// A vault over a new store with the app `shop` (dev, staging, prod = production), and a clock that
  /// ticks a second per reading.
  final class Fixture: @unchecked Sendable {
    let folder: ScratchFolder
    let vault: Vault
    let logger = Logger(label: "vault-test")

    init() async throws {
      folder = try ScratchFolder()
      let store = try SQLiteStore(
        folder: folder.path + "/store", create: true, lockTimeout: 60, logger: Logger(label: "test"))
      let ticks = Ticks()
      vault = Vault(store: store) { ticks.next() }
      try await vault.createApp(
        "shop", environments: ["dev", "staging", "prod"], production: "prod", author: "ana", logger: logger)
    }

    /// Writes a configuration folder named `name` holding `files`.
    func folder(_ name: String, _ files: [String: String]) throws -> String {
      let root = folder.path + "/" + name
      for (path, text) in files {
        let url = URL(fileURLWithPath: root + "/" + path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
      }
      return root
    }

    func push(_ environment: String, _ files: [String: String], as name: String) async throws -> Vault.Change {
      try await vault.push(
        app: "shop", environment: environment, folder: try folder(name, files), comment: name, author: "ana",
        backup: false, logger: logger
      ).change
    }
  }

  final class Ticks: @unchecked Sendable {
    private var now: TimeInterval = 1_800_000_000
    private let lock = NSLock()
    func next() -> Date {
      lock.lock()
      defer { lock.unlock() }
      now += 1
      return Date(timeIntervalSince1970: now)
    }
  }

  static let v1 = ["settings.yaml": "level: info\n", "entities/customer.json": "{\"name\": \"text\"}\n"]
  static let v2 = ["settings.yaml": "level: debug\n", "entities/customer.json": "{\"name\": \"text\"}\n"]

  @Test("push makes a version with its changes; the same tree again makes none")
  func push() async throws {
    let fixture = try await Fixture()
    guard case .created(let first, _) = try await fixture.push("dev", Self.v1, as: "one") else {
      Issue.record("no version")
      return
    }
    #expect(first.number == 1 && first.fileCount == 2 && first.author == "ana" && first.origin == .push)
    guard case .unchanged(let head) = try await fixture.push("dev", Self.v1, as: "again") else {
      Issue.record("an unchanged tree made a version")
      return
    }
    #expect(head.number == 1)
    guard case .created(let second, let changes) = try await fixture.push("dev", Self.v2, as: "two") else {
      Issue.record("no version")
      return
    }
    #expect(second.parent == 1 && changes.map(\.path) == ["settings.yaml"] && changes[0].kind == .modified)
    #expect(second.createdAt > first.createdAt, "the clock is read once per change")
  }

  @Test(
    "a push stores each new content once, whether few (found file by file) or many (65, past the few, two sharing one)"
  )
  func newContents() async throws {
    let fixture = try await Fixture()
    var files = (0..<100).reduce(into: [String: String]()) { $0["many/file-\($1).yaml"] = "n: \($1)\n" }
    _ = try await fixture.push("dev", files, as: "base")
    // Few: three new files share one new content, a fourth has another, and one file changes.
    files["new/a.yaml"] = "shared: 1\n"
    files["new/b.yaml"] = "shared: 1\n"
    files["many/c.yaml"] = "shared: 1\n"
    files["new/d.yaml"] = "other: 2\n"
    files["many/file-7.yaml"] = "n: seven\n"
    guard case .created(_, let few) = try await fixture.push("dev", files, as: "few") else {
      Issue.record("no version")
      return
    }
    #expect(few.count == 5)
    // Many: 65 files change at once, the last two to the same new content.
    for index in 0..<65 { files["many/file-\(index).yaml"] = "n: \(index) changed\n" }
    files["many/file-64.yaml"] = files["many/file-63.yaml"]
    guard case .created(let version, let many) = try await fixture.push("dev", files, as: "many") else {
      Issue.record("no version")
      return
    }
    #expect(many.count == 65)
    let stored = try await fixture.vault.store.files(app: "shop", number: version.number)
    #expect(try await fixture.vault.store.missingBlobs(stored.map(\.sha256)).isEmpty)
    #expect(try await fixture.vault.store.check().problems.isEmpty)
  }

  @Test("versions page, show, compare and describe read what the CLI and the page print")
  func reading() async throws {
    let fixture = try await Fixture()
    _ = try await fixture.push("dev", Self.v1, as: "one")
    _ = try await fixture.push("dev", Self.v2, as: "two")
    _ = try await fixture.vault.sync(app: "shop", number: 1, environment: nil, author: "bob", logger: fixture.logger)
    let page = try await fixture.vault.versionsPage(
      app: "shop", environment: nil, before: nil, limit: 1, logger: fixture.logger)
    #expect(page.rows.map(\.version.number) == [2] && page.rows[0].status == .notSynced && page.nextBefore == 2)
    let older = try await fixture.vault.versionsPage(
      app: "shop", environment: "dev", before: 2, limit: 5, logger: fixture.logger)
    #expect(older.rows.map(\.status) == [.currentProduction] && older.nextBefore == nil)
    let shown = try await fixture.vault.show(app: "shop", number: 1, logger: fixture.logger)
    #expect(shown.headOf == ["prod"] && shown.status == .currentProduction && shown.version.backup)
    let byVersion = try await fixture.vault.compare(app: "shop", .version(2), logger: fixture.logger)
    #expect(byVersion.from == 1 && byVersion.to == 2 && byVersion.changes.map(\.path) == ["settings.yaml"])
    let byEnvironment = try await fixture.vault.compare(
      app: "shop", .environments(from: "prod", to: "dev"), logger: fixture.logger)
    #expect(byEnvironment.from == 1 && byEnvironment.to == 2)
    let diffs = try await fixture.vault.describe(byVersion.changes, logger: fixture.logger)
    guard case .keys(let keys) = diffs.first?.detail else {
      Issue.record("no key-path detail")
      return
    }
    #expect(keys.map(\.description) == [#"level: "info" -> "debug""#])
    await #expect {
      try await fixture.vault.compare(app: "shop", .environments(from: "staging", to: "dev"), logger: fixture.logger)
    } throws: { ($0 as? OperationError)?.kind == .notFound }
  }

  @Test("import reads the whole archive before the store changes; a dry run changes nothing")
  func importArchive() async throws {
    let fixture = try await Fixture()
    _ = try await fixture.push("dev", Self.v1, as: "one")
    let archive = fixture.folder.path + "/dev.tar.gz"
    let dev = try await fixture.vault.resolve(app: "shop", environment: "dev", number: nil, logger: fixture.logger)
    let written = try await fixture.vault.export(
      dev, environment: "dev", compression: .gzip, to: .file(archive, replaceExisting: false), author: "ana",
      logger: fixture.logger)
    let dry = try await fixture.vault.importArchive(
      .file(archive), app: "shop", environment: "staging", comment: nil, author: "bob", reader: ArchiveReader(),
      allowOtherApp: false, dryRun: true, logger: fixture.logger)
    guard case .dryRun(let changes, nil) = dry.outcome else {
      Issue.record("not a dry run")
      return
    }
    #expect(changes.count == 2 && changes.allSatisfy { $0.kind == .added })
    #expect(try await fixture.vault.app("shop", logger: fixture.logger).environment("staging").head == nil)
    let result = try await fixture.vault.importArchive(
      .file(archive), app: "shop", environment: "staging", comment: nil, author: "bob", reader: ArchiveReader(),
      allowOtherApp: false, dryRun: false, logger: fixture.logger)
    guard case .imported(.created(let version, _)) = result.outcome else {
      Issue.record("not imported")
      return
    }
    #expect(version.origin == .import && version.treeDigest == dev.treeDigest && version.author == "bob")
    #expect(version.importedFrom?.archiveSHA256 == written.sha256 && version.importedFrom?.environment == "dev")
    let staging = try FileManager.default.contentsOfDirectory(atPath: fixture.vault.store.stagingFolder)
    #expect(staging.isEmpty, "the staging folder is removed after the import")
    let audit = try await fixture.vault.audit(app: "shop", limit: 2, logger: fixture.logger)
    #expect(audit.map(\.action) == [.export, .import] && audit[1].archiveSHA256 == written.sha256)
  }

  @Test("an import of another app is refused unless allowed; a bad archive leaves the store as it was")
  func importRefusals() async throws {
    let fixture = try await Fixture()
    let folder = try fixture.folder("other", Self.v1)
    let archive = fixture.folder.path + "/other.tar.gz"
    _ = try ConfigurationArchive.pack(
      folder: folder, app: "billing", environment: "prod", compression: .gzip,
      to: .file(archive, replaceExisting: false))
    await #expect {
      try await fixture.vault.importArchive(
        .file(archive), app: "shop", environment: "dev", comment: nil, author: "ana", reader: ArchiveReader(),
        allowOtherApp: false, dryRun: false, logger: fixture.logger)
    } throws: { ($0 as? ArchiveRefusal)?.rule == .otherApp && ($0 as? ArchiveRefusal)?.hint == .allowOtherApp }
    let garbage = fixture.folder.path + "/garbage.tar.gz"
    try Data("not an archive at all".utf8).write(to: URL(fileURLWithPath: garbage))
    let before = try await fixture.vault.check(logger: fixture.logger)
    await #expect {
      try await fixture.vault.importArchive(
        .file(garbage), app: "shop", environment: "dev", comment: nil, author: "ana", reader: ArchiveReader(),
        allowOtherApp: true, dryRun: false, logger: fixture.logger)
    } throws: { $0 is ArchiveRefusal }
    #expect(try await fixture.vault.check(logger: fixture.logger) == before)
    let imported = try await fixture.vault.importArchive(
      .file(archive), app: "shop", environment: "dev", comment: "ok", author: "ana", reader: ArchiveReader(),
      allowOtherApp: true, dryRun: false, logger: fixture.logger)
    guard case .imported(.created(let version, _)) = imported.outcome else {
      Issue.record("not imported")
      return
    }
    #expect(version.comment == "ok" && version.importedFrom?.app == "billing")
  }

  @Test("export writes the same bytes to a file and to a stream, and is recorded")
  func export() async throws {
    let fixture = try await Fixture()
    // Three files of over 100 KiB, uncompressed: the stream must hand them on as they are written.
    let large = (0..<3).reduce(into: [String: String]()) { files, index in
      files["data/\(index).txt"] = String(repeating: "line \(index)\n", count: 16_384)
    }
    _ = try await fixture.push("dev", large, as: "one")
    let version = try await fixture.vault.resolve(app: "shop", environment: nil, number: 1, logger: fixture.logger)
    let path = fixture.folder.path + "/v1.tar"
    let toFile = try await fixture.vault.export(
      version, environment: nil, compression: .none, to: .file(path, replaceExisting: false), author: "ana",
      logger: fixture.logger)
    let pieces = Pieces()
    let toStream = try await fixture.vault.export(
      version, environment: nil, compression: .none, to: .stream(name: "a response") { await pieces.append($0) },
      author: "web", logger: fixture.logger)
    let streamed = await pieces.data
    #expect(streamed == (try Data(contentsOf: URL(fileURLWithPath: path))))
    #expect(toFile.sha256 == toStream.sha256 && SHA256Hex.of(streamed) == toFile.sha256)
    #expect(await pieces.count >= 3, "handed on in pieces as it is written, not whole")
    let contents = try ArchiveReader().read(from: .file(path))
    #expect(contents.treeDigest == version.treeDigest && contents.compression == .none)
    let audit = try await fixture.vault.audit(app: "shop", limit: 2, logger: fixture.logger)
    #expect(audit.map(\.author) == ["ana", "web"] && audit.allSatisfy { $0.action == .export })
  }

  actor Pieces {
    var data = Data()
    var count = 0
    func append(_ piece: Data) {
      data.append(piece)
      count += 1
    }
  }

  @Test("restore and sync move heads by adding or pinning, never rewriting")
  func restoreAndSync() async throws {
    let fixture = try await Fixture()
    _ = try await fixture.push("dev", Self.v1, as: "one")
    _ = try await fixture.push("dev", Self.v2, as: "two")
    guard
      case .created(let restored, let changes) = try await fixture.vault.restore(
        app: "shop", number: 1, environment: "dev", comment: nil, author: "ana", logger: fixture.logger)
    else {
      Issue.record("no version")
      return
    }
    #expect(restored.number == 3 && restored.restoredFrom == 1 && restored.origin == .restore)
    #expect(changes.map(\.path) == ["settings.yaml"])
    #expect(try await fixture.vault.show(app: "shop", number: 2, logger: fixture.logger).version.backup)
    guard
      case .unchanged = try await fixture.vault.restore(
        app: "shop", number: 1, environment: "dev", comment: nil, author: "ana", logger: fixture.logger)
    else {
      Issue.record("restoring the head's own tree made a version")
      return
    }
    let synced = try await fixture.vault.sync(
      app: "shop", number: 2, environment: nil, author: "ana", logger: fixture.logger)
    #expect(synced.environment == "prod" && synced.replaced == nil && !synced.wasHead && synced.version.syncedAt != nil)
    let again = try await fixture.vault.sync(
      app: "shop", number: 3, environment: nil, author: "ana", logger: fixture.logger)
    #expect(again.replaced == 2)
    await #expect {
      try await fixture.vault.sync(
        app: "shop", number: 3, environment: nil, author: "ana", expectedHead: .version(2), logger: fixture.logger)
    } throws: { ($0 as? OperationError)?.kind == .conflict }
  }

  @Test("a change decided on a head the caller names is refused when that head moved")
  func namedHeadConflict() async throws {
    let fixture = try await Fixture()
    _ = try await fixture.push("dev", Self.v1, as: "one")
    _ = try await fixture.push("dev", Self.v2, as: "two")
    await #expect {
      try await fixture.vault.push(
        app: "shop", environment: "dev", folder: try fixture.folder("three", ["a": "b"]), comment: "", author: "ana",
        backup: false, expectedHead: .version(1), logger: fixture.logger)
    } throws: { ($0 as? OperationError)?.kind == .conflict }
    #expect(try await fixture.vault.app("shop", logger: fixture.logger).environment("dev").head == 2)
  }

  @Test("environments are created and deleted; checkout writes the head; backup writes and records it")
  func environmentsCheckoutBackup() async throws {
    let fixture = try await Fixture()
    _ = try await fixture.push("dev", Self.v1, as: "one")
    try await fixture.vault.createEnvironment(
      app: "shop", name: "qa", production: false, author: "ana", logger: fixture.logger)
    _ = try await fixture.push("qa", Self.v2, as: "qa")
    try await fixture.vault.deleteEnvironment(app: "shop", name: "qa", author: "ana", logger: fixture.logger)
    #expect(
      try await fixture.vault.app("shop", logger: fixture.logger).environments.map(\.name) == [
        "dev", "staging", "prod",
      ])
    await #expect {
      try await fixture.vault.deleteEnvironment(app: "shop", name: "prod", author: "ana", logger: fixture.logger)
    } throws: { ($0 as? OperationError)?.kind == .operationFailed }
    let target = fixture.folder.path + "/checkout"
    let version = try await fixture.vault.checkout(app: "shop", environment: "dev", to: target, logger: fixture.logger)
    #expect(version.number == 1)
    #expect(try String(contentsOfFile: target + "/settings.yaml", encoding: .utf8) == "level: info\n")
    var options = BackupRun.Options(folder: fixture.folder.path + "/backups", author: "cron")
    options.apps = ["shop"]
    let report = try await fixture.vault.backup(options, logger: fixture.logger)
    #expect(report.outcomes.map(\.status) == [.written] && report.outcomes[0].environment == "dev")
    let audit = try await fixture.vault.audit(app: "shop", limit: 1, logger: fixture.logger)
    #expect(audit[0].action == .backup && audit[0].author == "cron")
  }

  @Test("gc removes a killed import's staging folder and old unreferenced blobs; check never counts them")
  func garbage() async throws {
    let fixture = try await Fixture()
    let staging = fixture.vault.store.stagingFolder
    // A process that is gone: pid_max is at most 4,194,304 on Linux.
    let abandoned = staging + "/4194305-1"
    try FileManager.default.createDirectory(atPath: abandoned, withIntermediateDirectories: true)
    try Data("staged".utf8).write(to: URL(fileURLWithPath: abandoned + "/x"))
    let live = staging + "/\(getpid())-2"
    try FileManager.default.createDirectory(atPath: live, withIntermediateDirectories: true)
    #expect(try await fixture.vault.check(logger: fixture.logger).isConsistent)
    let collected = try await fixture.vault.collectGarbage(grace: 0, logger: fixture.logger)
    #expect(collected.stagingFolders == 1)
    #expect(!FileManager.default.fileExists(atPath: abandoned) && FileManager.default.fileExists(atPath: live))
  }

  @Test("a file nested deeper than any configuration is shown without keys; a huge text change is one hunk")
  func boundedDiff() {
    let deep = Data((String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)).utf8)
    let shallow = Data("[1]\n".utf8)
    if case .keys = ContentDiff.compare(path: "c.yaml", shallow, deep) {
      Issue.record("a 10,000-deep YAML file was decoded")
    }
    if case .keys = ContentDiff.compare(path: "c.json", deep, shallow) {
      Issue.record("a 10,000-deep JSON file was decoded")
    }
    let a = Data(String(repeating: "a\n", count: 60_000).utf8)
    let b = Data(String(repeating: "b\n", count: 60_000).utf8)
    // Two texts with no line in common are a deletion and an insertion, in linear time.
    guard case .text(let lines) = ContentDiff.compare(path: "t.txt", a, b), lines.count == 120_001 else {
      Issue.record("a 120,000-line text change was not shown as one hunk")
      return
    }
  }
}
