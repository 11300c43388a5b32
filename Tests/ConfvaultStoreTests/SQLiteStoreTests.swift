import ConfvaultCore
import Foundation
import GRDBSQLite
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

  /// Runs a Python `script` with `arguments` (another connection to the database, as a disk or a hand
  /// with sqlite3 would change or read it); what it printed.
  @discardableResult
  private func python(_ script: String, _ arguments: String...) throws -> String {
    let process = Process()
    let output = Pipe()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script] + arguments
    process.standardOutput = output
    try process.run()
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    #expect(process.terminationStatus == 0, "python3 failed: \(script)")
    return text
  }

  @Test(
    "changes are committed with synchronous = FULL (2), not GRDB's NORMAL; stored blobs alone with NORMAL (1), which no change after them keeps"
  )
  func synchronousLevels() async throws {
    let folder = try ScratchFolder()
    let store = try await makeStore(in: folder)
    #expect(try await store.synchronousSettingOfWriter() == 2)
    // The blobs' commit is synced by the version's that follows it.
    let fixture = StoreUnderTest(store: store, folder: folder)
    try await store.storeBlobs([try fixture.file("b.json", "[1]").1])
    #expect(try await store.synchronousSettingOfWriter() == 1)
    try await fixture.addVersion("prod", ["b.json": "[1]", "c.json": "[2]"], expectedHead: nil)
    #expect(try await store.synchronousSettingOfWriter() == 2, "the version after them")
    let reopened = try SQLiteStore(folder: store.folder, access: .readWrite, logger: logger)
    #expect(try await reopened.synchronousSettingOfWriter() == 2, "on an existing store too")
    let readMostly = try SQLiteStore(folder: store.folder, access: .readMostly, logger: logger)
    try await StoreUnderTest(store: readMostly, folder: folder).addVersion("dev", ["a.json": "[]"], expectedHead: 1)
    #expect(try await readMostly.synchronousSettingOfWriter() == 2, "and on a writer opened for a first change")
  }

  @Test(
    "SQLite counts none of the memory it takes: counting locks one mutex, shared by every connection, on each allocation"
  )
  func memoryNotCounted() async throws {
    let folder = try ScratchFolder()
    let store = try await makeStore(in: folder)
    // Both halves of a check read at once, each on a connection of its own, as they were waiting.
    #expect(try await store.check().problems.isEmpty)
    #expect(sqlite3_memory_used() == 0)
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
    "check finds a damaged folder record, a broken chain of deltas, a blob gc would remove, a wrong tree digest, a missing tree, a stray chunk, overlapping chunks and a folder stored twice",
    arguments: [
      ("UPDATE tree_node SET data = zeroblob(length(data)) WHERE base IS NOT NULL", "is damaged in the store"),
      ("UPDATE tree_node SET base = base + 1000000 WHERE base IS NOT NULL", "does not lead to a whole record"),
      ("UPDATE blob SET named = 0 WHERE sha256 = (SELECT MAX(sha256) FROM blob)", "is not noted as used"),
      ("UPDATE blob SET named = 0", "is not noted as used"),
      ("UPDATE version SET tree_digest = randomblob(32) WHERE number = 2", "does not match"),
      ("UPDATE version SET tree = 999999 WHERE number = 3", "its tree is missing"),
      (
        "INSERT INTO tree_node (digest, base, depth, zstd, data)"
          + " SELECT digest, base, depth, zstd, data FROM tree_node WHERE base IS NULL LIMIT 1",
        "is stored 2 times"
      ),
      ("INSERT INTO blob_chunk (zstd, data) VALUES (0, x'00')", "1 stored chunks belong to no blob"),
      (
        "UPDATE blob SET first_chunk = (SELECT MIN(first_chunk) FROM blob)"
          + " WHERE first_chunk = (SELECT MAX(first_chunk) FROM blob)",
        "its chunks overlap another blob's"
      ),
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
    try python(
      "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit(); c.close()",
      folder + "/" + SQLiteStore.databaseName, statement)
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
    try python(
      "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('UPDATE tree_node SET base = NULL, depth = 0, "
        + "zstd = ?, data = ? WHERE digest = ?', (int(sys.argv[2]), bytes.fromhex(sys.argv[3]), bytes.fromhex(sys.argv[4]))); "
        + "c.commit()",
      folder + "/" + SQLiteStore.databaseName, looped.compressed ? "1" : "0", hexString(looped.data), hexString(root))
    let reader = try SQLiteStore(folder: folder, access: .readOnly, logger: logger)
    let report = try await reader.check()
    #expect(!report.isConsistent && report.problems.contains { $0.contains("nest deeper than any path") }, "\(report)")
    let refused = await #expect(throws: OperationError.self) { try await reader.files(app: "shop", number: 1) }
    #expect(refused?.message.contains("nest deeper") == true)
  }

  /// A configuration document of about 8 KiB whose `version` is `version`.
  private func document(version: Int) -> String {
    var lines = ["{", "  \"version\": \(version),"]
    for index in 0..<200 { lines.append("  \"setting_\(index)\": \"value \(index * 7919 % 1009) of the shop\",") }
    lines.append("  \"end\": true")
    lines.append("}")
    return lines.joined(separator: "\n")
  }

  /// Each blob's base (the blob whose one chunk its base row is) and stored size, read by another
  /// connection, as a hand with sqlite3 would.
  private func storedBlobs(_ store: SQLiteStore) throws -> [SHA256Hex: (base: SHA256Hex?, storedSize: Int)] {
    let text = try python(
      "import sqlite3, sys\nrows = sqlite3.connect(sys.argv[1]).execute("
        + "'SELECT sha256, base, (SELECT length(data) FROM blob_chunk WHERE id = first_chunk), first_chunk, chunk_count"
        + " FROM blob').fetchall()\n"
        + "whole = {f: d for d, b, n, f, c in rows if b is None and c == 1}\n"
        + "for d, b, n, f, c in rows: print(d.hex(), whole[b].hex() if b is not None else '-', n)",
      store.folder + "/" + SQLiteStore.databaseName)
    var found: [SHA256Hex: (base: SHA256Hex?, storedSize: Int)] = [:]
    for line in text.split(separator: "\n") {
      let fields = line.split(separator: " ").map(String.init)
      found[SHA256Hex(fields[0])!] = (fields[1] == "-" ? nil : SHA256Hex(fields[1]), Int(fields[2])!)
    }
    return found
  }

  /// A new store, and versions 1 to `count` of `document(version:)` as blobs of `a.json`, each
  /// naming the one before it as similar.
  private func storeWithVersions(_ count: Int) throws -> (
    scratch: ScratchFolder, store: SQLiteStore, fixture: StoreUnderTest, versions: [BlobFile]
  ) {
    let scratch = try ScratchFolder()
    let store = try SQLiteStore(folder: scratch.path + "/store", create: true, lockTimeout: 60, logger: logger)
    let fixture = StoreUnderTest(store: store, folder: scratch)
    var versions: [BlobFile] = []
    for version in 1...count {
      var blob = try fixture.file("a.json", document(version: version)).1
      blob.similar = versions.last?.sha256
      versions.append(blob)
    }
    return (scratch, store, fixture, versions)
  }

  /// `blob` encoded as a push does, outside the transaction that stores it.
  private func encodedAsPush(_ blob: BlobFile, in store: SQLiteStore) async throws -> BlobWriter.Encoded {
    let bases = try await store.reading { db in try BlobWriter.deltaBases(db, for: [blob]) }
    return try #require(try BlobWriter.encodeSmall([blob], bases: bases).first ?? nil)
  }

  @Test(
    "a one-value change is stored as a delta against the whole blob it resembles, one step at most, and reads back exactly"
  )
  func blobDeltas() async throws {
    let (_, store, fixture, versions) = try storeWithVersions(3)
    let (first, second, third) = (versions[0], versions[1], versions[2])
    var unlike = try fixture.file("b.json", String(repeating: "nothing in common ", count: 400)).1
    unlike.similar = first.sha256
    try await store.storeBlobs([first])
    try await store.storeBlobs([second, unlike])
    try await store.storeBlobs([third])
    let stored = try storedBlobs(store)
    #expect(stored[first.sha256]?.base == nil)
    #expect(stored[second.sha256]?.base == first.sha256)
    // Against the first, whole, not against the second, itself a delta.
    #expect(stored[third.sha256]?.base == first.sha256)
    #expect(stored[unlike.sha256]?.base == nil, "a delta that does not pay is not kept")
    let whole = try #require(stored[first.sha256]?.storedSize)
    #expect(try #require(stored[second.sha256]?.storedSize) * 10 < whole, "\(stored)")
    for (blob, version) in [(first, 1), (second, 2), (third, 3)] {
      var read = Data()
      try await store.readBlob(blob.sha256) { read.append(contentsOf: $0) }
      #expect(String(decoding: read, as: UTF8.self) == document(version: version))
    }
    let report = try await store.check()
    #expect(report.isConsistent, "\(report.problems)")
    #expect(report.unreferencedBlobs == 4)
    // Nothing uses them: bases and deltas go together.
    #expect(try await store.collectGarbage(grace: -10) == 4)
    #expect(try storedBlobs(store).isEmpty)
  }

  @Test(
    "a delta made against a stored base that a gc removed meanwhile, its chunk's row since taken by other bytes, is stored whole"
  )
  func deltaBaseReplacedMeanwhile() async throws {
    let (_, store, fixture, versions) = try storeWithVersions(2)
    let (first, second) = (versions[0], versions[1])
    try await store.storeBlobs([first])
    let encoded = try await encodedAsPush(second, in: store)
    #expect(encoded.delta != nil, "the second is a delta against the first")
    // Meanwhile a gc removes the first, another file's chunk takes its row, and the first is stored again.
    #expect(try await store.collectGarbage(grace: -10) == 1)
    let other = try fixture.file("b.json", String(repeating: "nothing in common ", count: 400)).1
    try await store.storeBlobs([other])
    try await store.storeBlobs([first])
    let changed = second
    try await store.writing { db in try BlobWriter(db: db, storedAt: 0).store(changed, encoded: encoded) }
    let stored = try storedBlobs(store)
    #expect(stored[second.sha256] != nil && stored[second.sha256]?.base == nil, "\(stored)")
    var read = Data()
    try await store.readBlob(second.sha256) { read.append(contentsOf: $0) }
    #expect(String(decoding: read, as: UTF8.self) == document(version: 2))
    let report = try await store.check()
    #expect(report.isConsistent, "\(report.problems)")
  }

  @Test(
    "a delta made against a stored base is stored whole when the base's row, which its similar blob still leads to, holds other bytes since"
  )
  func deltaBaseRowRefilled() async throws {
    let (_, store, fixture, versions) = try storeWithVersions(3)
    let (whole, pushed) = (versions[0], versions[2])
    var similar = versions[1]
    // Differs from the first near its end: a delta against it would not decode to the pushed file.
    let other = try fixture.file("a.json", document(version: 4) + "\n/* changed at the end */").1
    try await store.storeBlobs([whole])
    try await store.storeBlobs([similar])
    let encoded = try await encodedAsPush(pushed, in: store)
    #expect(encoded.delta?.stored?.row == 1, "made against the first's chunk, through the second")
    // Meanwhile a gc removes both; another file takes row 1, and the second is stored again, against it.
    #expect(try await store.collectGarbage(grace: -10) == 2)
    try await store.storeBlobs([other])
    similar.similar = other.sha256
    try await store.storeBlobs([similar])
    #expect(try storedBlobs(store)[similar.sha256]?.base == other.sha256)
    let changed = pushed
    try await store.writing { db in try BlobWriter(db: db, storedAt: 0).store(changed, encoded: encoded) }
    #expect(try storedBlobs(store)[pushed.sha256].map { $0.base == nil } == true)
    var read = Data()
    try await store.readBlob(pushed.sha256) { read.append(contentsOf: $0) }
    #expect(String(decoding: read, as: UTF8.self) == document(version: 3))
    let report = try await store.check()
    #expect(report.isConsistent, "\(report.problems)")
  }

  @Test("gc keeps a chunk that a delta names as its base though no blob's range covers it (a damaged store)")
  func gcKeepsStrayBase() async throws {
    let (scratch, store, _, versions) = try storeWithVersions(3)
    let folder = scratch.path + "/store"
    let (whole, delta, pushed) = (versions[0], versions[1], versions[2])
    try await store.storeBlobs([whole])
    try await store.storeBlobs([delta])
    // The base's blob row is lost, its chunk left.
    try python(
      "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
        + "c.execute('DELETE FROM blob WHERE sha256 = ?', (bytes.fromhex(sys.argv[2]),)); c.commit(); c.close()",
      folder + "/" + SQLiteStore.databaseName, whole.sha256.value)
    try await store.storeBlobs([pushed])
    _ = try await store.collectGarbage(grace: 100_000)
    for (blob, version) in [(delta, 2), (pushed, 3)] {
      var read = Data()
      try await store.readBlob(blob.sha256) { read.append(contentsOf: $0) }
      #expect(String(decoding: read, as: UTF8.self) == document(version: version))
    }
    let report = try await store.check()
    #expect(
      report.problems.contains { $0.contains("is not the one chunk of a blob stored whole") }
        && !report.problems.contains { $0.contains("belong to no blob") }, "\(report.problems)")
  }

  @Test("blobs read together hold a bounded amount: small deltas against large bases are streamed past it")
  func readTogetherBounded() async throws {
    let scratch = try ScratchFolder()
    let store = try SQLiteStore(folder: scratch.path + "/store", create: true, lockTimeout: 60, logger: logger)
    var random = SystemRandomNumberGenerator()
    var deltas: [(digest: SHA256Hex, content: Data)] = []
    for index in 0..<24 {
      // A base of 1 MiB that does not compress, and a 4 KiB file that starts like it.
      let base = Data((0..<BlobCodec.chunkSize).map { _ in UInt8.random(in: 0...255, using: &random) })
      let small = base.prefix(4_096) + Data("changed \(index)".utf8)
      let (basePath, smallPath) = (scratch.path + "/base-\(index)", scratch.path + "/small-\(index)")
      try base.write(to: URL(fileURLWithPath: basePath))
      try small.write(to: URL(fileURLWithPath: smallPath))
      let baseBlob = BlobFile(sha256: SHA256Hex.of(base), size: Int64(base.count), path: basePath)
      try await store.storeBlobs([baseBlob])
      try await store.storeBlobs([
        BlobFile(
          sha256: SHA256Hex.of(small), size: Int64(small.count), path: smallPath, similar: baseBlob.sha256)
      ])
      deltas.append((SHA256Hex.of(small), small))
    }
    #expect(try storedBlobs(store).values.filter { $0.base != nil }.count == 24, "each small file is a delta")
    let read = try await store.readBlobs(deltas.map(\.digest))
    let held = read.compactMap { $0 }
    // Each costs its base, stored and decoded (2 MiB): a few fit, the others are left to be streamed.
    #expect(!held.isEmpty && held.count <= BlobCodec.bytesReadTogether / (2 * BlobCodec.chunkSize))
    #expect(read.count == 24 && read.contains(nil))
    for (content, delta) in zip(read, deltas) where content != nil { #expect(content == delta.content) }
    var streamed: [Data] = []
    try await store.forEachBlob(deltas.map { ($0.digest, Int64($0.content.count)) }) { _, blob in
      var content = Data()
      try await blob.read { content.append(contentsOf: $0) }
      streamed.append(content)
    }
    #expect(streamed == deltas.map(\.content))
  }

  @Test("gc keeps a delta's base while the delta stays, even when no folder names the base")
  func gcKeepsBases() async throws {
    let scratch = try ScratchFolder()
    let store = try SQLiteStore(folder: scratch.path + "/store", create: true, lockTimeout: 60, logger: logger)
    let fixture = StoreUnderTest(store: store, folder: scratch)
    try await fixture.createShop()
    let first = try fixture.file("a.json", document(version: 1)).1
    var second = try fixture.file("a.json", document(version: 2)).1
    var third = try fixture.file("a.json", document(version: 3)).1
    second.similar = first.sha256
    third.similar = first.sha256
    try await store.storeBlobs([first])
    try await store.storeBlobs([second, third])
    // Only the third is used: the second goes, the first stays as the third's base.
    try await fixture.addVersion("dev", ["a.json": document(version: 3)], expectedHead: nil)
    #expect(try await store.check().unreferencedBlobs == 1)
    #expect(try await store.collectGarbage(grace: -10) == 1)
    #expect(Set(try storedBlobs(store).keys) == [first.sha256, third.sha256])
    var read = Data()
    try await store.readBlob(third.sha256) { read.append(contentsOf: $0) }
    #expect(String(decoding: read, as: UTF8.self) == document(version: 3))
    let report = try await store.check()
    #expect(report.isConsistent && report.unreferencedBlobs == 0, "\(report)")
  }

  @Test(
    "check reports a delta whose base is gone, is not a whole blob's chunk or is another's, and a read of it fails with a message",
    arguments: [
      ("DELETE FROM blob_chunk WHERE id IN (SELECT base FROM blob)", "is not stored"),
      // A delta against its own chunk: not a whole blob's.
      ("UPDATE blob SET base = first_chunk WHERE base IS NOT NULL", "is not the one chunk of a blob stored whole"),
      // Against another whole blob, stored last: it decodes, to other bytes.
      (
        "UPDATE blob SET base = (SELECT MAX(first_chunk) FROM blob) WHERE base IS NOT NULL",
        "does not match its SHA-256"
      ),
    ])
  func deltaDamage(statement: String, problem: String) async throws {
    let scratch = try ScratchFolder()
    let folder = scratch.path + "/store"
    let second: BlobFile
    do {
      let store = try SQLiteStore(folder: folder, create: true, lockTimeout: 60, logger: logger)
      let fixture = StoreUnderTest(store: store, folder: scratch)
      let first = try fixture.file("a.json", document(version: 1)).1
      var changed = try fixture.file("a.json", document(version: 2)).1
      changed.similar = first.sha256
      try await store.storeBlobs([first])
      try await store.storeBlobs([changed])
      // As long as the first, with other bytes throughout.
      try await store.storeBlobs([try fixture.file("b.json", document(version: 1).uppercased()).1])
      second = changed
    }
    try python(
      "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit(); c.close()",
      folder + "/" + SQLiteStore.databaseName, statement)
    let reader = try SQLiteStore(folder: folder, access: .readOnly, logger: logger)
    let report = try await reader.check()
    #expect(!report.isConsistent && report.problems.contains { $0.contains(problem) }, "\(report.problems)")
    let refused = await #expect(throws: OperationError.self) { try await reader.readBlob(second.sha256) { _ in } }
    #expect(refused?.message.contains("base") == true, "\(String(describing: refused))")
    let refusedTogether = await #expect(throws: OperationError.self) { try await reader.readBlobs([second.sha256]) }
    #expect(refusedTogether?.message.contains("base") == true, "\(String(describing: refusedTogether))")
  }

  @Test(
    "a push stores a changed file as a delta against the file at its path in the head, new files against their kin"
  )
  func pushStoresDeltas() async throws {
    let scratch = try ScratchFolder()
    let store = try SQLiteStore(folder: scratch.path + "/store", create: true, lockTimeout: 60, logger: logger)
    let vault = Vault(store: store)
    try await vault.createApp("shop", environments: ["dev", "staging"], production: nil, author: "ana", logger: logger)
    /// Pushes `files` (path: document version) as the whole folder; the digest of each file.
    func push(_ environment: String, _ files: [String: Int]) async throws -> [String: SHA256Hex] {
      let folder = scratch.path + "/push-\(UUID().uuidString)"
      var digests: [String: SHA256Hex] = [:]
      for (path, version) in files {
        let url = URL(fileURLWithPath: folder + "/" + path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let text = Data(document(version: version).utf8)
        try text.write(to: url)
        digests[path] = SHA256Hex.of(text)
      }
      _ = try await vault.push(
        app: "shop", environment: environment, folder: folder, comment: "c", author: "ana", backup: false,
        logger: logger)
      return digests
    }
    let first = try await push("dev", ["conf/app.json": 1])
    let second = try await push("dev", ["conf/app.json": 2])
    // Staging has no head: the first file of a name is whole, the others of that name are deltas against it.
    let services = try await push(
      "staging", ["a/deployment.json": 10, "b/deployment.json": 11, "c/deployment.json": 12, "c/other.json": 13])
    // A new file resembles a file of the head beside it, itself whole or one step from a whole one.
    let added = try await push(
      "staging",
      [
        "a/deployment.json": 10, "b/deployment.json": 11, "c/deployment.json": 12, "c/other.json": 13,
        "c/extra.json": 14,
      ])
    let stored = try storedBlobs(store)
    #expect(stored[first["conf/app.json"]!]?.base == nil)
    #expect(stored[second["conf/app.json"]!]?.base == first["conf/app.json"], "\(stored)")
    let whole = try #require(
      ["a", "b", "c"].compactMap { services["\($0)/deployment.json"] }.first { stored[$0]?.base == nil })
    for path in ["a/deployment.json", "b/deployment.json", "c/deployment.json"] where services[path] != whole {
      #expect(stored[services[path]!]?.base == whole, "\(path): \(stored)")
    }
    #expect(stored[services["c/other.json"]!]?.base == nil, "a file of another name starts its own")
    let neighbours = [whole, services["c/other.json"]!]
    #expect(stored[added["c/extra.json"]!]?.base.map(neighbours.contains) == true, "\(stored)")
    #expect(try await store.check().isConsistent)
    for digest in services.values {
      var read = Data()
      try await store.readBlob(digest) { read.append(contentsOf: $0) }
      #expect(SHA256Hex.of(read) == digest)
    }
  }

  @Test("gc removes chunks no blob's range covers, and leaves every blob readable")
  func gcRemovesStrayChunks() async throws {
    let scratch = try ScratchFolder()
    let folder = scratch.path + "/store"
    do {
      let store = try SQLiteStore(folder: folder, create: true, lockTimeout: 60, logger: logger)
      let fixture = StoreUnderTest(store: store, folder: scratch)
      try await fixture.createShop()
      try await fixture.addVersion("dev", ["a.json": "{}", "b.json": document(version: 1)], expectedHead: nil)
    }
    // A chunk between two blobs' and one after the last, as a damaged store may hold.
    try python(
      "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
        + "c.execute('UPDATE blob SET first_chunk = first_chunk + 10 WHERE first_chunk = (SELECT MAX(first_chunk) FROM blob)'); "
        + "c.execute('UPDATE blob_chunk SET id = id + 10 WHERE id = (SELECT MAX(id) FROM blob_chunk)'); "
        + "c.execute(\"INSERT INTO blob_chunk (id, zstd, data) VALUES ((SELECT MAX(id) - 5 FROM blob_chunk), 0, x'00')\"); "
        + "c.execute(\"INSERT INTO blob_chunk (zstd, data) VALUES (0, x'01')\"); c.commit()",
      folder + "/" + SQLiteStore.databaseName)
    let store = try SQLiteStore(folder: folder, create: false, lockTimeout: 60, logger: logger)
    let report = try await store.check()
    #expect(report.problems == ["2 stored chunks belong to no blob (`confvault gc` removes them)"], "\(report)")
    #expect(try await store.collectGarbage(grace: 0) == 0, "no blob is removed")
    #expect(try await store.check().isConsistent)
    var read = Data()
    try await store.readBlob(SHA256Hex.of(Data(document(version: 1).utf8))) { read.append(contentsOf: $0) }
    #expect(String(decoding: read, as: UTF8.self) == document(version: 1))
  }

  @Test("gc refuses a store whose blobs' chunks overlap, and removes nothing")
  func gcRefusesOverlappingChunks() async throws {
    let scratch = try ScratchFolder()
    let folder = scratch.path + "/store"
    let store = try SQLiteStore(folder: folder, create: true, lockTimeout: 60, logger: logger)
    let fixture = StoreUnderTest(store: store, folder: scratch)
    let (_, used) = try fixture.file("a.json", document(version: 1))
    let (_, unused) = try fixture.file("b.json", "left behind")
    try await store.storeBlobs([used])
    try await store.storeBlobs([unused])
    // The unused blob's range is made to cover the other's chunk: removing it would take that chunk too.
    try python(
      "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
        + "c.execute('UPDATE blob SET first_chunk = (SELECT MIN(first_chunk) FROM blob), chunk_count = 2 WHERE sha256 = ?', "
        + "(bytes.fromhex(sys.argv[2]),)); c.commit()",
      folder + "/" + SQLiteStore.databaseName, unused.sha256.value)
    let refused = await #expect(throws: OperationError.self) { try await store.collectGarbage(grace: -10) }
    #expect(refused?.message.contains("overlap") == true, "\(String(describing: refused))")
    #expect(try storedBlobs(store).count == 2)
    var read = Data()
    try await store.readBlob(used.sha256) { read.append(contentsOf: $0) }
    #expect(String(decoding: read, as: UTF8.self) == document(version: 1))
  }
}
