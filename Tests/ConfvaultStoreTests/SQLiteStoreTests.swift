import ConfvaultCore
import Foundation
import Logging
import Testing

@testable import ConfvaultSQLite

/// What only the SQLite store promises: how it commits, and how it opens for reading only.
@Suite struct SQLiteStoreTests {
  let logger = Logger(label: "sqlite-store-test")

  /// A new store in `scratch`/store with the app `shop` and one version.
  @discardableResult
  private func makeStore(in scratch: ScratchFolder) async throws -> SQLiteStore {
    let store = try SQLiteStore(folder: scratch.path + "/store", create: true, lockTimeout: 60, logger: logger)
    let fixture = StoreUnderTest(store: store, folder: scratch)
    try await fixture.createShop()
    try await fixture.addVersion("dev", ["a.json": "{}"], expectedHead: nil)
    return store
  }

  private func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

  @Test("the connection that commits changes runs with synchronous = FULL (2), not GRDB's NORMAL")
  func synchronousFull() async throws {
    let folder = try ScratchFolder()
    let store = try await makeStore(in: folder)
    #expect(try await store.synchronousSettingOfWriter() == 2)
    let reopened = try SQLiteStore(folder: store.folder, access: .readWrite, logger: logger)
    #expect(try await reopened.synchronousSettingOfWriter() == 2, "on an existing store too")
    let readMostly = try SQLiteStore(folder: store.folder, access: .readMostly, logger: logger)
    try await StoreUnderTest(store: readMostly, folder: folder).addVersion("dev", ["a.json": "[]"], expectedHead: 1)
    #expect(try await readMostly.synchronousSettingOfWriter() == 2, "and on a writer opened for a first change")
  }

  @Test("a store opened read-only reads, writes nothing, and refuses a change with permissionDenied")
  func readOnly() async throws {
    let folder = try ScratchFolder()
    let store = try await makeStore(in: folder)
    let database = store.folder + "/" + SQLiteStore.databaseName
    let before = try bytes(database)
    let reader = try SQLiteStore(folder: store.folder, access: .readOnly, logger: logger)
    #expect(try await reader.versions(app: "shop", environment: nil, before: nil, limit: 10).map(\.number) == [1])
    #expect(try await reader.check().isConsistent)
    let refused = await #expect(throws: OperationError.self) {
      try await StoreUnderTest(store: reader, folder: folder).addVersion("dev", ["b.json": "{}"], expectedHead: 1)
    }
    #expect(refused?.kind == .permissionDenied && refused?.message.contains("read-only") == true)
    await #expect(throws: OperationError.self) { try await reader.synchronousSettingOfWriter() }
    #expect(try bytes(database) == before)
    #expect(try await store.versions(app: "shop", environment: nil, before: nil, limit: 10).count == 1)
  }

  @Test("the WAL files outlive the last connection, so that a reader never has to make them")
  func walFilesKept() async throws {
    let scratch = try ScratchFolder()
    let folder = scratch.path + "/store"
    let database = folder + "/" + SQLiteStore.databaseName
    try await makeStore(in: scratch)  // closed again: no connection is left
    #expect(FileManager.default.fileExists(atPath: database + "-wal"))
    #expect(FileManager.default.fileExists(atPath: database + "-shm"))
    let size = try FileManager.default.attributesOfItem(atPath: database + "-wal")[.size] as? Int
    #expect(size == 0, "every commit was checkpointed into the database file on closing")
    _ = try SQLiteStore(folder: folder, access: .readOnly, logger: logger)
  }

  @Test("a store migrated by a newer confvault is refused, read-only or not, and left as it was")
  func newerStore() async throws {
    let scratch = try ScratchFolder()
    let folder = scratch.path + "/store"
    try await makeStore(in: scratch)
    let database = folder + "/" + SQLiteStore.databaseName
    let tampered = try Process.run(
      URL(fileURLWithPath: "/usr/bin/env"),
      arguments: [
        "python3", "-c",
        "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"INSERT INTO grdb_migrations VALUES ('v99-from-the-future')\"); c.commit()",
        database,
      ])
    tampered.waitUntilExit()
    #expect(tampered.terminationStatus == 0)
    let before = try bytes(database)
    for access in [SQLiteStore.Access.readOnly, .readMostly, .readWrite] {
      let refused = #expect(throws: OperationError.self) {
        _ = try SQLiteStore(folder: folder, access: access, logger: logger)
      }
      #expect(refused?.kind == .operationFailed && refused?.hint == .upgrade, "\(access)")
      #expect(refused?.message.contains("`v99-from-the-future`") == true, "\(String(describing: refused))")
    }
    #expect(try bytes(database) == before)
  }

  @Test(
    "check finds a damaged folder record, a broken chain of deltas, a blob gc would remove and a wrong tree digest",
    arguments: [
      ("UPDATE tree_node SET data = zeroblob(length(data)) WHERE base IS NOT NULL", "is damaged in the store"),
      ("UPDATE tree_node SET base = randomblob(32) WHERE base IS NOT NULL", "does not lead to a whole record"),
      ("DELETE FROM tree_blob WHERE blob = (SELECT MAX(blob) FROM tree_blob)", "is not noted as used"),
      ("DELETE FROM tree_blob", "is not noted as used"),
      ("UPDATE version SET tree_digest = 'sha256:' || lower(hex(randomblob(32))) WHERE number = 2", "does not match"),
    ])
  func checkFindsDamage(statement: String, problem: String) async throws {
    let scratch = try ScratchFolder()
    let folder = scratch.path + "/store"
    do {
      let store = try SQLiteStore(folder: folder, create: true, lockTimeout: 60, logger: logger)
      let fixture = StoreUnderTest(store: store, folder: scratch)
      try await fixture.createShop()
      var files: [String: String] = [:]
      for index in 0..<30 { files["big/item-\(index).yaml"] = "id: \(index)" }
      for change in 0..<3 {
        files["big/item-\(change).yaml"] = "id: changed \(change)"
        try await fixture.addVersion("dev", files, expectedHead: change == 0 ? nil : change)
      }
      #expect(try await store.check().isConsistent)
    }
    // Damaged by another connection, as a disk or a hand with sqlite3 would.
    let damage = Process()
    damage.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    damage.arguments = [
      "python3", "-c",
      "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit(); c.close()",
      folder + "/" + SQLiteStore.databaseName, statement,
    ]
    try damage.run()
    damage.waitUntilExit()
    #expect(damage.terminationStatus == 0)
    let report = try await SQLiteStore(folder: folder, access: .readOnly, logger: logger).check()
    #expect(!report.isConsistent && report.problems.contains { $0.contains(problem) }, "\(report.problems)")
  }

  @Test(
    "a folder record damaged into a loop is reported by check, and a read of its tree fails, never hangs or crashes")
  func folderLoop() async throws {
    let scratch = try ScratchFolder()
    let folder = scratch.path + "/store"
    let root: Data
    do {
      let store = try SQLiteStore(folder: folder, create: true, lockTimeout: 60, logger: logger)
      let fixture = StoreUnderTest(store: store, folder: scratch)
      try await fixture.createShop()
      try await fixture.addVersion("dev", ["a/b.yaml": "b: 1"], expectedHead: nil)
      // Not read back through the store: this process's cache of decoded folders would keep it.
      let file = ManifestFile(path: "a/b.yaml", size: 4, mode: .regular, sha256: SHA256Hex.of(Data("b: 1".utf8)))
      root = TreeNode.build([file]).last!.digest
    }
    // The root's record rewritten to hold itself as a subfolder.
    let looped = FolderRecord.encode(TreeNode(entries: [.folder(name: "loop", node: root)]), digest: root, base: nil)
    let damage = Process()
    damage.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    damage.arguments = [
      "python3", "-c",
      "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('UPDATE tree_node SET base = NULL, depth = 0, "
        + "zstd = ?, data = ? WHERE digest = ?', (int(sys.argv[2]), bytes.fromhex(sys.argv[3]), bytes.fromhex(sys.argv[4]))); "
        + "c.commit()",
      folder + "/" + SQLiteStore.databaseName, looped.compressed ? "1" : "0", hexString(looped.data), hexString(root),
    ]
    try damage.run()
    damage.waitUntilExit()
    #expect(damage.terminationStatus == 0)
    let reader = try SQLiteStore(folder: folder, access: .readOnly, logger: logger)
    let report = try await reader.check()
    #expect(!report.isConsistent && report.problems.contains { $0.contains("nest deeper than any path") }, "\(report)")
    let refused = await #expect(throws: OperationError.self) { try await reader.files(app: "shop", number: 1) }
    #expect(refused?.message.contains("nest deeper") == true)
  }
}
