import ConfvaultCore
import ConfvaultSQLite
import ConfvaultTestSupport
import Foundation
import Logging
import Testing

/// A kind of store the conformance suite runs over. A new store joins by adding a case here.
enum StoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
  case sqlite
  /// A new database of this process's throwaway cluster (`PostgresCluster`).
  case postgres

  var testDescription: String { rawValue }

  /// A new, empty store of this kind, and the folder it lives in (removed with the fixture).
  func make() throws -> StoreUnderTest {
    let folder = try ScratchFolder()
    switch self {
    case .sqlite:
      let store = try SQLiteStore(
        folder: folder.path + "/store", create: true, lockTimeout: 60, logger: Logger(label: "test"))
      return StoreUnderTest(store: store, folder: folder)
    case .postgres:
      return StoreUnderTest(store: try PostgresCluster.shared().newStore(), folder: folder)
    }
  }
}

/// A store under test and the scratch folder that holds it and the files blobs are read from.
struct StoreUnderTest {
  let store: any VersionStore
  let folder: ScratchFolder

  /// Writes `text` to a scratch file and returns it as a file of a configuration at `path`.
  func file(_ path: String, _ text: String, executable: Bool = false) throws -> (ManifestFile, BlobFile) {
    let data = Data(text.utf8)
    let digest = SHA256Hex.of(data)
    let onDisk = folder.path + "/blob-" + digest.value
    try data.write(to: URL(fileURLWithPath: onDisk))
    return (
      ManifestFile(path: path, size: Int64(data.count), mode: executable ? .executable : .regular, sha256: digest),
      BlobFile(sha256: digest, size: Int64(data.count), path: onDisk)
    )
  }

  /// Stores the files' content, then adds a version made of them, decided on `expectedHead`.
  @discardableResult
  func addVersion(
    _ environment: String, _ files: [String: String], expectedHead: Int?, origin: Origin = .push,
    restoredFrom: Int? = nil, app: String = "shop", at: Date = Date(timeIntervalSince1970: 1_800_000_000)
  ) async throws -> Version {
    let made = try files.map { try file($0.key, $0.value) }
    try await store.storeBlobs(made.map(\.1))
    return try await store.apply(
      StoreChange(
        .addVersion(
          VersionDraft(
            app: app, environment: environment, comment: "c", origin: origin, restoredFrom: restoredFrom,
            files: made.map(\.0)),
          expectedHead: expectedHead),
        author: "ana", at: at, detail: "test"))!
  }

  func head(_ environment: String, app: String = "shop") async throws -> Int? {
    try await store.app(app).environment(environment).head
  }

  func createShop() async throws {
    try await store.apply(
      StoreChange(
        .createApp(name: "shop", environments: ["dev", "prod"], production: "prod"), author: "ana",
        at: Date(timeIntervalSince1970: 1_800_000_000), detail: "app created"))
  }
}

/// A folder under the system's temporary folder, removed when the value goes away.
final class ScratchFolder: @unchecked Sendable {
  let path: String

  init() throws {
    var template = Array((NSTemporaryDirectory() + "/confvault-store-test-XXXXXX").utf8CString)
    guard let made = mkdtemp(&template) else { throw POSIXError(.EIO) }
    path = String(cString: made)
  }

  deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// The store protocol's contract, checked on every kind of store through the protocol alone.
@Suite struct StoreConformanceTests {
  @Test(
    "versions are numbered per app from 1, never reused, each the head of its environment",
    arguments: StoreKind.allCases)
  func numbering(kind: StoreKind) async throws {
    let fixture = try kind.make()
    try await fixture.createShop()
    try await fixture.store.apply(
      StoreChange(
        .createApp(name: "other", environments: ["dev"], production: nil), author: "ana", at: Date(),
        detail: "app created"))
    let first = try await fixture.addVersion("dev", ["a.json": "{}"], expectedHead: nil)
    let second = try await fixture.addVersion("prod", ["a.json": "{\"x\":1}"], expectedHead: nil)
    let third = try await fixture.addVersion("dev", ["a.json": "[]"], expectedHead: 1)
    let elsewhere = try await fixture.addVersion("dev", ["b.yaml": "b: 1"], expectedHead: nil, app: "other")
    #expect([first.number, second.number, third.number] == [1, 2, 3] as [Int])
    #expect(elsewhere.number == 1, "numbers are per app")
    #expect(first.parent == nil && second.parent == nil && third.parent == 1)
    let (dev, prod) = (try await fixture.head("dev"), try await fixture.head("prod"))
    #expect(dev == 3 && prod == 2)
    let listed = try await fixture.store.versions(app: "shop", environment: nil, before: nil, limit: 10)
    #expect(listed.map(\.number) == [3, 2, 1])
    #expect(
      try await fixture.store.versions(app: "shop", environment: "dev", before: 3, limit: 10).map(\.number) == [1])
    #expect(third.createdAt == Date(timeIntervalSince1970: 1_800_000_000) && third.author == "ana")
    #expect(try await fixture.store.files(app: "shop", number: 3).map(\.path) == ["a.json"])
  }

  @Test(
    "the files of some folders of a version are those directly in them, not in subfolders",
    arguments: StoreKind.allCases)
  func filesInFolders(kind: StoreKind) async throws {
    let fixture = try kind.make()
    try await fixture.createShop()
    try await fixture.addVersion(
      "dev", ["a.json": "1", "x/b.json": "2", "x/y/c.json": "3", "x/y/d.json": "4", "z/e.json": "5"], expectedHead: nil)
    let found = try await fixture.store.files(app: "shop", number: 1, inFolders: ["", "x", "x/y/none", "q"])
    #expect(found.map(\.path).sorted() == ["a.json", "x/b.json"])
    #expect(found.first { $0.path == "x/b.json" }?.sha256 == SHA256Hex.of(Data("2".utf8)))
    #expect(
      try await fixture.store.files(app: "shop", number: 1, inFolders: ["x/y"]).map(\.path).sorted() == [
        "x/y/c.json", "x/y/d.json",
      ])
    await #expect {
      try await fixture.store.files(app: "shop", number: 9, inFolders: [""])
    } throws: { ($0 as? OperationError)?.kind == .notFound }
  }

  @Test("a change decided on a head that has moved is a conflict, and changes nothing", arguments: StoreKind.allCases)
  func conflict(kind: StoreKind) async throws {
    let fixture = try kind.make()
    try await fixture.createShop()
    try await fixture.addVersion("dev", ["a.json": "1"], expectedHead: nil)
    try await fixture.addVersion("dev", ["a.json": "2"], expectedHead: 1)
    let audit = try await fixture.store.audit(app: "shop", limit: 100)
    await #expect {
      try await fixture.addVersion("dev", ["a.json": "3"], expectedHead: 1)
    } throws: { ($0 as? OperationError)?.kind == .conflict }
    await #expect {
      try await fixture.addVersion("prod", ["a.json": "3"], expectedHead: 2)
    } throws: { ($0 as? OperationError)?.kind == .conflict }
    await #expect {
      try await fixture.store.apply(
        StoreChange(
          .sync(app: "shop", environment: "prod", number: 1, expectedHead: 2), author: "ana", at: Date(),
          detail: "sync"))
    } throws: { ($0 as? OperationError)?.kind == .conflict }
    await #expect {
      try await fixture.store.apply(
        StoreChange(
          .deleteEnvironment(app: "shop", name: "dev", expectedHead: 1), author: "ana", at: Date(), detail: "delete"))
    } throws: { ($0 as? OperationError)?.kind == .conflict }
    let (dev, prod) = (try await fixture.head("dev"), try await fixture.head("prod"))
    #expect(dev == 2 && prod == nil)
    #expect(try await fixture.store.audit(app: "shop", limit: 100) == audit, "no audit entry for a refused change")
    #expect(try await fixture.store.versions(app: "shop", environment: nil, before: nil, limit: 10).count == 2)
    let next = try await fixture.addVersion("dev", ["a.json": "4"], expectedHead: 2)
    #expect(next.number == 3, "a refused change used no number")
  }

  @Test(
    "restores and imports pin the head they replace; a sync pins the version and the replaced head",
    arguments: StoreKind.allCases)
  func pins(kind: StoreKind) async throws {
    let fixture = try kind.make()
    try await fixture.createShop()
    try await fixture.addVersion("dev", ["a.json": "1"], expectedHead: nil)
    try await fixture.addVersion("dev", ["a.json": "2"], expectedHead: 1)
    #expect(try await !fixture.store.version(app: "shop", number: 1).backup, "a push pins nothing")
    try await fixture.addVersion("dev", ["a.json": "1"], expectedHead: 2, origin: .restore, restoredFrom: 1)
    #expect(try await fixture.store.version(app: "shop", number: 2).backup)
    #expect(try await fixture.store.version(app: "shop", number: 3).restoredFrom == 1)
    try await fixture.store.apply(
      StoreChange(
        .sync(app: "shop", environment: "prod", number: 1, expectedHead: nil), author: "ana", at: Date(),
        detail: "sync"))
    try await fixture.store.apply(
      StoreChange(
        .sync(app: "shop", environment: "prod", number: 3, expectedHead: 1), author: "ana", at: Date(),
        detail: "sync"))
    let one = try await fixture.store.version(app: "shop", number: 1)
    let three = try await fixture.store.version(app: "shop", number: 3)
    #expect(one.backup && three.backup)
    #expect(try await fixture.head("prod") == 3)
  }

  @Test(
    "synced-at is set by a sync to production only, and the status follows the production head",
    arguments: StoreKind.allCases)
  func syncStatus(kind: StoreKind) async throws {
    let fixture = try kind.make()
    try await fixture.createShop()
    try await fixture.addVersion("dev", ["a.json": "1"], expectedHead: nil)
    try await fixture.addVersion("dev", ["a.json": "2"], expectedHead: 1)
    try await fixture.addVersion("dev", ["a.json": "3"], expectedHead: 2)
    let at = Date(timeIntervalSince1970: 1_900_000_000)
    try await fixture.store.apply(
      StoreChange(
        .sync(app: "shop", environment: "prod", number: 1, expectedHead: nil), author: "a", at: at, detail: "s"))
    try await fixture.store.apply(
      StoreChange(.sync(app: "shop", environment: "prod", number: 2, expectedHead: 1), author: "a", at: at, detail: "s")
    )
    try await fixture.store.apply(
      StoreChange(.sync(app: "shop", environment: "dev", number: 1, expectedHead: 3), author: "a", at: at, detail: "s"))
    let production = try await fixture.store.app("shop").production?.head
    let versions = try await fixture.store.versions(app: "shop", environment: nil, before: nil, limit: 10)
    let statuses = versions.map { SyncStatus(of: $0, productionHead: production) }
    #expect(statuses == [.notSynced, .currentProduction, .synced])
    #expect(versions[1].syncedAt == at && versions[2].syncedAt == at && versions[0].syncedAt == nil)
    #expect(try await fixture.head("dev") == 1, "a sync to another environment moves its head")
  }

  @Test("the audit log keeps every change in order, exports and backups included", arguments: StoreKind.allCases)
  func auditOrder(kind: StoreKind) async throws {
    let fixture = try kind.make()
    try await fixture.createShop()
    try await fixture.addVersion("dev", ["a.json": "1"], expectedHead: nil)
    let archive = SHA256Hex.of(Data("archive".utf8))
    try await fixture.store.apply(
      StoreChange(
        .note(app: "shop", environment: "dev", action: .export, version: 1), author: "bob", at: Date(),
        detail: "exported", archiveSHA256: archive))
    try await fixture.store.apply(
      StoreChange(
        .sync(app: "shop", environment: "prod", number: 1, expectedHead: nil), author: "cy", at: Date(), detail: "s"))
    let entries = try await fixture.store.audit(app: "shop", limit: 100)
    #expect(entries.map(\.action) == [.`init`, .environmentCreate, .environmentCreate, .push, .export, .sync])
    #expect(entries.map(\.id) == entries.map(\.id).sorted() && Set(entries.map(\.id)).count == entries.count)
    #expect(entries[4].archiveSHA256 == archive && entries[4].author == "bob" && entries[4].version == 1)
    #expect(entries[3].version == 1 && entries[5].author == "cy")
    #expect(
      try await fixture.store.audit(app: "shop", limit: 2).map(\.action) == [.export, .sync], "the newest, oldest first"
    )
  }

  @Test("content is stored once, whoever stores it and however often", arguments: StoreKind.allCases)
  func deduplication(kind: StoreKind) async throws {
    let fixture = try kind.make()
    try await fixture.createShop()
    let (file, blob) = try fixture.file("a.json", "{\"same\": true}")
    #expect(try await fixture.store.missingBlobs([file.sha256]) == [file.sha256])
    try await fixture.store.storeBlobs([blob, blob])
    try await fixture.store.storeBlobs([blob])
    #expect(try await fixture.store.missingBlobs([file.sha256]).isEmpty)
    try await fixture.addVersion(
      "dev", ["a.json": "{\"same\": true}", "b/c.json": "{\"same\": true}"], expectedHead: nil)
    try await fixture.addVersion("prod", ["x.json": "{\"same\": true}"], expectedHead: nil)
    let report = try await fixture.store.check()
    #expect(report.isConsistent && report.blobs == 1 && report.versions == 2, "\(report)")
    var read = Data()
    try await fixture.store.readBlob(file.sha256) { read.append(contentsOf: $0) }
    #expect(read == Data("{\"same\": true}".utf8))
  }

  @Test(
    "the blobs a tree lacks are found beside stored folders; a version naming one is refused and changes nothing",
    arguments: StoreKind.allCases)
  func missingInTree(kind: StoreKind) async throws {
    let fixture = try kind.make()
    try await fixture.createShop()
    let stored = ["a.json": "1", "x/b.json": "2", "x/y/c.json": "3", "z/d.json": "4"]
    try await fixture.addVersion("dev", stored, expectedHead: nil)
    // x/y is stored (and so is everything in z); x/new.json is not, nor is x/y2/e.json's content.
    var files = try stored.map { try fixture.file($0.key, $0.value).0 }
    let (new, newBlob) = try fixture.file("x/new.json", "not stored yet")
    let (deep, _) = try fixture.file("x/y2/e.json", "not stored either")
    let (copy, _) = try fixture.file("x/y2/f.json", "2")  // stored already, in a new folder
    let (twin, _) = try fixture.file("x/y3/g.json", "not stored yet")  // listed once with x/new.json
    files += [new, deep, copy, twin]
    files.sort { EntryPath.byteOrder($0.path, $1.path) }
    #expect(
      try await fixture.store.missingBlobs(inTree: VersionTree(files: files)) == [new.sha256, deep.sha256].sorted())
    try await fixture.store.storeBlobs([newBlob])
    #expect(try await fixture.store.missingBlobs(inTree: VersionTree(files: files)) == [deep.sha256])
    let refused = await #expect(throws: OperationError.self) {
      try await fixture.store.apply(
        StoreChange(
          .addVersion(
            VersionDraft(app: "shop", environment: "dev", comment: "c", origin: .push, files: files), expectedHead: 1),
          author: "ana", at: Date(timeIntervalSince1970: 1_800_000_000), detail: "pushed"))
    }
    #expect(refused?.message.contains("`x/y2/e.json`") == true, "\(String(describing: refused))")
    #expect(try await fixture.head("dev") == 1)
    let report = try await fixture.store.check()
    #expect(report.isConsistent && report.versions == 1, "\(report)")
  }

  @Test("a blob larger than a chunk reads back whole; a file that changed is not stored", arguments: StoreKind.allCases)
  func largeAndChangedBlobs(kind: StoreKind) async throws {
    let fixture = try kind.make()
    var bytes = Data(count: BlobCodec.chunkSize * 2 + 123)
    for index in stride(from: 0, to: bytes.count, by: 7) { bytes[index] = UInt8(truncatingIfNeeded: index * 31) }
    let path = fixture.folder.path + "/large"
    try bytes.write(to: URL(fileURLWithPath: path))
    let digest = SHA256Hex.of(bytes)
    try await fixture.store.storeBlobs([BlobFile(sha256: digest, size: Int64(bytes.count), path: path)])
    var read = Data()
    var chunks = 0
    try await fixture.store.readBlob(digest) {
      read.append(contentsOf: $0)
      chunks += 1
    }
    #expect(read == bytes && chunks == 3)
    let (_, stale) = try fixture.file("b", "before")
    try Data("after!".utf8).write(to: URL(fileURLWithPath: stale.path))
    await #expect { try await fixture.store.storeBlobs([stale]) } throws: { ($0 as? OperationError)?.kind == .conflict }
    #expect(try await fixture.store.missingBlobs([stale.sha256]) == [stale.sha256])
  }

  @Test(
    "blobs read together come back whole and in order: deltas, repeats and empty ones; a large one is streamed",
    arguments: StoreKind.allCases)
  func readTogether(kind: StoreKind) async throws {
    let fixture = try kind.make()
    let base = String(repeating: "name: service\nreplicas: 3\nimage: registry/app:1.0\n", count: 40)
    let (first, firstBlob) = try fixture.file("a.yaml", base)
    let (second, secondBlob) = try fixture.file("b.yaml", base + "extra: true\n")
    let (empty, emptyBlob) = try fixture.file("empty", "")
    var large = Data(count: BlobCodec.chunkSize + 5)
    for index in stride(from: 0, to: large.count, by: 3) { large[index] = UInt8(truncatingIfNeeded: index * 7) }
    let largePath = fixture.folder.path + "/large"
    try large.write(to: URL(fileURLWithPath: largePath))
    let largeDigest = SHA256Hex.of(large)
    var similar = secondBlob
    similar.similar = first.sha256  // a delta, where the store keeps them
    try await fixture.store.storeBlobs([
      firstBlob, similar, emptyBlob, BlobFile(sha256: largeDigest, size: Int64(large.count), path: largePath),
    ])

    let wanted = [first.sha256, largeDigest, second.sha256, first.sha256, empty.sha256]
    let contents = try await fixture.store.readBlobs(wanted)
    #expect(contents.count == 5)
    #expect(contents[0] == Data(base.utf8) && contents[3] == Data(base.utf8))
    #expect(contents[1] == nil || contents[1] == large, "a large blob is streamed, or read whole")
    #expect(contents[2] == Data((base + "extra: true\n").utf8))
    #expect(contents[4] == nil || contents[4] == Data())
    #expect(try await fixture.store.readBlobs([]).isEmpty)

    let sizes: [Int64] = [first.size, Int64(large.count), second.size, first.size, 0]
    var seen: [(Int, Data)] = []
    try await fixture.store.forEachBlob(Array(zip(wanted, sizes))) { index, blob in
      var read = Data()
      try await blob.read { read.append(contentsOf: $0) }
      seen.append((index, read))
    }
    #expect(seen.map(\.0) == [0, 1, 2, 3, 4])
    #expect(seen.map(\.1) == [Data(base.utf8), large, Data((base + "extra: true\n").utf8), Data(base.utf8), Data()])

    let absent = SHA256Hex.of(Data("never stored".utf8))
    await #expect { try await fixture.store.readBlobs([first.sha256, absent]) } throws: {
      ($0 as? OperationError)?.kind == .internal && "\($0)".contains(absent.value)
    }
  }

  @Test(
    "gc spares unreferenced blobs younger than its grace period and removes older ones", arguments: StoreKind.allCases)
  func garbageGrace(kind: StoreKind) async throws {
    let fixture = try kind.make()
    try await fixture.createShop()
    try await fixture.addVersion("dev", ["kept.json": "1"], expectedHead: nil)
    let (pending, blob) = try fixture.file("pending.json", "an upload in flight")
    try await fixture.store.storeBlobs([blob])
    #expect(try await fixture.store.check().unreferencedBlobs == 1)
    #expect(try await fixture.store.collectGarbage(grace: 3600) == 0, "stored just now: within the grace period")
    #expect(try await fixture.store.missingBlobs([pending.sha256]).isEmpty)
    try await Task.sleep(for: .seconds(1.1))
    #expect(try await fixture.store.collectGarbage(grace: 0) == 1)
    #expect(try await fixture.store.missingBlobs([pending.sha256]) == [pending.sha256])
    let report = try await fixture.store.check()
    #expect(report.isConsistent && report.blobs == 1 && report.unreferencedBlobs == 0, "the version's blob stays")
  }

  @Test("check passes on a store made only through the protocol", arguments: StoreKind.allCases)
  func checkPasses(kind: StoreKind) async throws {
    let fixture = try kind.make()
    try await fixture.createShop()
    try await fixture.addVersion("dev", ["a/b/c.json": "1", "a/d.yaml": "d: 1", "e.txt": "e"], expectedHead: nil)
    try await fixture.addVersion("dev", ["a/b/c.json": "2", "a/d.yaml": "d: 1"], expectedHead: 1)
    let report = try await fixture.store.check()
    #expect(report.isConsistent && report.versions == 2 && report.blobs == 4, "\(report)")
    let changes = try await fixture.store.changedFiles(app: "shop", from: 1, to: 2)
    #expect(changes.map(\.path) == ["a/b/c.json", "e.txt"] && changes.map(\.kind) == [.modified, .removed])
  }

  @Test("names that exist are refused as conflicts; missing ones are not found", arguments: StoreKind.allCases)
  func namesAndMissing(kind: StoreKind) async throws {
    let fixture = try kind.make()
    try await fixture.createShop()
    await #expect {
      try await fixture.createShop()
    } throws: { ($0 as? OperationError)?.kind == .conflict }
    await #expect {
      try await fixture.store.apply(
        StoreChange(.createEnvironment(app: "shop", name: "qa", production: true), author: "a", at: Date(), detail: "e")
      )
    } throws: { ($0 as? OperationError)?.kind == .conflict }
    await #expect { try await fixture.store.app("nope") } throws: { ($0 as? OperationError)?.kind == .notFound }
    await #expect { try await fixture.store.version(app: "shop", number: 9) } throws: {
      ($0 as? OperationError)?.kind == .notFound
    }
  }

  @Test(
    "8 concurrent writers on one app get gap-free numbers, each version's parent its environment's previous head",
    arguments: StoreKind.allCases)
  func concurrentWriters(kind: StoreKind) async throws {
    let fixture = try kind.make()
    try await fixture.createShop()
    let perWriter = 5
    try await withThrowingTaskGroup(of: Void.self) { group in
      for writer in 0..<8 {
        group.addTask {
          let environment = writer % 2 == 0 ? "dev" : "prod"
          for round in 0..<perWriter {
            while true {
              let head = try await fixture.head(environment)
              do {
                try await fixture.addVersion(environment, ["w.json": "\(writer)-\(round)"], expectedHead: head)
                break
              } catch let error as OperationError where error.kind == .conflict || error.kind == .temporaryFailure {
                continue  // decided on a head that moved: decide again
              }
            }
          }
        }
      }
      try await group.waitForAll()
    }
    let versions = try await fixture.store.versions(app: "shop", environment: nil, before: nil, limit: 1000)
    #expect(versions.map(\.number).sorted() == Array(1...8 * perWriter))
    for environment in ["dev", "prod"] {
      let chain = versions.filter { $0.environment == environment }.sorted { $0.number < $1.number }
      #expect(chain.first?.parent == nil)
      for (previous, next) in zip(chain, chain.dropFirst()) {
        #expect(next.parent == previous.number, "no head move was lost in \(environment)")
      }
      #expect(try await fixture.head(environment) == chain.last?.number)
    }
    #expect(try await fixture.store.check().isConsistent)
  }

  @Test(
    "a one-file change to a folder of 300 files stores a small delta, past the longest chain too; every version reads back",
    arguments: StoreKind.allCases)
  func folderDeltas(kind: StoreKind) async throws {
    let fixture = try kind.make()
    try await fixture.createShop()
    var files = ["small/a.yaml": "a: 1"]
    for index in 0..<300 { files["big/item-\(index).yaml"] = "id: \(index)\nname: item \(index)\n" }
    try await fixture.addVersion("dev", files, expectedHead: nil)
    let first = try await fixture.store.check()
    #expect(first.isConsistent && first.folders == 3, "\(first)")
    // More changes than the longest chain of deltas, so whole records are written again on the way.
    let changes = FolderRecord.maxDepth + 6
    for change in 1...changes {
      files["big/item-\(change * 7 % 300).yaml"] = "id: changed \(change)\n"
      try await fixture.addVersion("dev", files, expectedHead: change)
    }
    let report = try await fixture.store.check()
    #expect(report.isConsistent && report.versions == changes + 1, "\(report)")
    #expect(report.folders == 3 + 2 * changes, "one new root and one new big/ per version")
    // Whole records for every version would cost `changes` times the first version's folders.
    #expect(report.folderBytes < first.folderBytes * 3, "\(report.folderBytes) bytes against \(first.folderBytes)")
    for number in [2, FolderRecord.maxDepth + 1, FolderRecord.maxDepth + 2, changes + 1] {
      var expected = ["small/a.yaml": "a: 1"]
      for index in 0..<300 { expected["big/item-\(index).yaml"] = "id: \(index)\nname: item \(index)\n" }
      for change in 1..<number { expected["big/item-\(change * 7 % 300).yaml"] = "id: changed \(change)\n" }
      let stored = try await fixture.store.files(app: "shop", number: number)
      #expect(stored.map(\.path) == expected.keys.sorted { EntryPath.byteOrder($0, $1) }, "version \(number)")
      #expect(stored.map(\.sha256) == stored.map { SHA256Hex.of(Data(expected[$0.path]!.utf8)) }, "version \(number)")
    }
    let changed = try await fixture.store.changedFiles(app: "shop", from: 1, to: changes + 1)
    #expect(
      changed.count == Set((1...changes).map { $0 * 7 % 300 }).count && changed.allSatisfy { $0.kind == .modified })
  }
}
