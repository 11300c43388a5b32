import ConfvaultCore
import Foundation
import Logging
import Testing

/// `StoreCopy` between every pair of store kinds: the target holds the source's history as it is.
@Suite struct StoreCopyConformanceTests {
  /// Everything the protocol shows of a store, to compare two stores by.
  struct Contents: Equatable {
    var apps: [AppInfo]
    var versions: [String: [Version]]
    var files: [String: [[ManifestFile]]]
    var audit: [AuditEntry]
    var content: [SHA256Hex: Data]

    init(_ store: any VersionStore) async throws {
      apps = try await store.apps()
      versions = [:]
      files = [:]
      content = [:]
      for app in apps {
        let listed = try await store.versions(app: app.name, environment: nil, before: nil, limit: Int.max)
        versions[app.name] = listed
        var trees: [[ManifestFile]] = []
        for version in listed {
          let tree = try await store.files(app: app.name, number: version.number)
          trees.append(tree)
          for file in tree where content[file.sha256] == nil {
            var bytes = Data()
            try await store.readBlob(file.sha256) { bytes.append(contentsOf: $0) }
            content[file.sha256] = bytes
          }
        }
        files[app.name] = trees
      }
      audit = try await store.audit(app: nil, limit: Int.max)
    }
  }

  static func at(_ minute: Int) -> Date { Date(timeIntervalSince1970: 1_800_000_000 + TimeInterval(minute * 60)) }

  /// A history with every kind of change: pushes, an import, a restore, syncs to production and to
  /// staging, a deleted environment, a production moved, a note, an executable file, a large file,
  /// and a second app whose audit entries interleave with the first's.
  static func makeHistory(_ fixture: StoreUnderTest) async throws {
    let store = fixture.store
    try await fixture.createShop()
    try await store.apply(
      StoreChange(
        .createApp(name: "blog", environments: ["live"], production: "live"), author: "bob", at: at(1),
        detail: "app created"))
    try await fixture.addVersion("dev", ["a.json": "{\"a\":1}", "conf/b.yaml": "b: 1"], expectedHead: nil, at: at(2))
    try await fixture.addVersion("live", ["index.md": "# hi"], expectedHead: nil, app: "blog", at: at(3))
    try await store.apply(
      StoreChange(
        .sync(app: "shop", environment: "prod", number: 1, expectedHead: nil), author: "ana", at: at(4), detail: "sync")
    )
    try await fixture.addVersion("dev", ["a.json": "{\"a\":2}", "conf/b.yaml": "b: 1"], expectedHead: 1, at: at(5))
    let (script, scriptBlob) = try fixture.file("bin/run.sh", "#!/bin/sh\necho hi\n", executable: true)
    let large = String(repeating: "0123456789abcdef", count: (BlobCodec.chunkSize / 16) + 100)
    let (big, bigBlob) = try fixture.file("data/big.txt", large)
    try await store.storeBlobs([scriptBlob, bigBlob])
    let archive = SHA256Hex.of(Data("an archive".utf8))
    try await store.apply(
      StoreChange(
        .addVersion(
          VersionDraft(
            app: "shop", environment: "prod", comment: "from the old server", origin: .import,
            importedFrom: ImportOrigin(archiveSHA256: archive, app: "shop", environment: "prod", version: 7),
            files: [script, big]),
          expectedHead: 1),
        author: "cy", at: at(6), detail: "imported", archiveSHA256: archive))
    try await fixture.addVersion(
      "dev", ["a.json": "{\"a\":1}"], expectedHead: 2, origin: .restore, restoredFrom: 1, at: at(7))
    try await store.apply(
      StoreChange(
        .sync(app: "shop", environment: "prod", number: 2, expectedHead: 3), author: "ana", at: at(8), detail: "sync"))
    try await store.apply(
      StoreChange(
        .createEnvironment(app: "shop", name: "qa", production: false), author: "bob", at: at(9), detail: "qa"))
    try await fixture.addVersion("qa", ["q.toml": "q = 1"], expectedHead: nil, at: at(10))
    try await store.apply(
      StoreChange(
        .sync(app: "shop", environment: "dev", number: 5, expectedHead: 4), author: "ana", at: at(11), detail: "to dev")
    )
    try await store.apply(
      StoreChange(
        .deleteEnvironment(app: "shop", name: "qa", expectedHead: 5), author: "bob", at: at(12), detail: "gone"))
    try await store.apply(
      StoreChange(
        .createEnvironment(app: "shop", name: "staging", production: false), author: "bob", at: at(13), detail: "s"))
    try await store.apply(
      StoreChange(.setProduction(app: "shop", name: "staging"), author: "bob", at: at(14), detail: "moved"))
    try await store.apply(
      StoreChange(
        .note(app: "blog", environment: "live", action: .export, version: 1), author: "dee", at: at(15),
        detail: "exported", archiveSHA256: archive))
  }

  @Test(
    "a copy holds every app, environment, head, version, pin, sync date, tree and audit entry as the source",
    arguments: StoreKind.allCases, StoreKind.allCases)
  func copiesEverything(from: StoreKind, to: StoreKind) async throws {
    let source = try from.make()
    let target = try to.make()
    try await Self.makeHistory(source)
    let before = try await Contents(source.store)
    #expect(before.versions["shop"]?.count == 5 && before.versions["blog"]?.count == 1)
    #expect(before.versions["shop"]?.contains { $0.syncedAt != nil && $0.backup } == true)

    let summary = try await StoreCopy(from: source.store, to: target.store).run(logger: Logger(label: "test"))
    #expect(summary.apps == 2 && summary.versions == 6 && summary.auditEntries == before.audit.count)
    #expect(summary.environments == 4)
    let after = try await Contents(target.store)
    #expect(after.apps == before.apps, "apps, environments, production and heads")
    #expect(after.versions == before.versions, "every field of every version")
    #expect(after.files == before.files, "every tree")
    #expect(after.audit == before.audit, "the audit log, ids included")
    #expect(after.content == before.content, "every content")
    let report = try await target.store.check()
    #expect(report.isConsistent, "\(report.problems)")
    #expect(report.versions == 6 && report.unreferencedBlobs == 0)

    // The copy goes on where the source would: the next number and the next audit id follow.
    let next = try await target.addVersion("dev", ["a.json": "{\"a\":3}"], expectedHead: 5, at: Self.at(20))
    #expect(next.number == 6 && next.parent == 5)
    let newest = try #require(try await target.store.audit(app: nil, limit: 1).last)
    #expect(newest.id > before.audit.map(\.id).max()! && newest.action == .push)
  }

  @Test("a store is copied only into an empty store; a full one is left as it is", arguments: StoreKind.allCases)
  func refusesNonEmptyTarget(kind: StoreKind) async throws {
    let source = try StoreKind.sqlite.make()
    try await Self.makeHistory(source)
    let target = try kind.make()
    try await target.store.apply(
      StoreChange(
        .createApp(name: "other", environments: ["dev"], production: nil), author: "ana", at: Self.at(0), detail: "x"))
    let before = try await Contents(target.store)
    await #expect {
      try await StoreCopy(from: source.store, to: target.store).run(logger: Logger(label: "test"))
    } throws: { error in
      let error = error as? OperationError
      return error?.kind == .cannotCreateOutput && "\(error!)".contains("'other'")
    }
    #expect(try await Contents(target.store) == before)
  }

  @Test("a version whose files do not give its tree digest is not copied", arguments: StoreKind.allCases)
  func refusesWrongTree(kind: StoreKind) async throws {
    let source = try StoreKind.sqlite.make()
    try await source.createShop()
    let version = try await source.addVersion("dev", ["a.json": "{}"], expectedHead: nil)
    let target = try kind.make()
    try await target.store.apply(
      StoreChange(.copyApp(name: "shop", createdAt: Self.at(0)), author: "ana", at: Self.at(0), detail: "copy"))
    let (other, blob) = try target.file("a.json", "[]")
    try await target.store.storeBlobs([blob])
    await #expect {
      try await target.store.apply(
        StoreChange(
          .copyVersions(app: "shop", [VersionCopy(version, files: [other])]), author: "ana", at: Self.at(0),
          detail: "copy"))
    } throws: { ($0 as? OperationError)?.kind == .badInput }
    #expect(try await target.store.versions(app: "shop", environment: nil, before: nil, limit: 10).isEmpty)
  }
}
