import ConfvaultCore
import Crypto
import Foundation
import PostgresNIO

/// `confvault check`: every blob's hash, every folder record once, every version's tree digest,
/// every head, and the numbering; read in one snapshot, each table streamed, not held whole.
struct StoreCheck: Sendable {
  let session: SQLSession

  func run() async throws -> CheckReport {
    var problems: [String] = []
    let blobs = try await checkBlobs(&problems)
    let reader = try await checkTrees(&problems)
    let versions = try await checkVersions(&problems, folders: reader)
    try await checkHeads(&problems)
    try await checkAudit(&problems)
    let unreferenced =
      try await session.one(
        """
        SELECT COUNT(*) FROM blob b WHERE NOT EXISTS (SELECT 1 FROM tree_blob t WHERE t.blob = b.sha256)
        """)?.decode(Int.self) ?? 0
    let folders = try await session.one("SELECT COUNT(*), COALESCE(SUM(LENGTH(data)), 0)::bigint FROM tree_node")?
      .decode((Int, Int64).self)
    return CheckReport(
      problems: problems, unreferencedBlobs: unreferenced, versions: versions, blobs: blobs,
      folders: folders?.0 ?? 0, folderBytes: folders?.1 ?? 0)
  }

  /// A blob being checked while its chunks stream by.
  private struct BlobUnderCheck {
    var key: Data
    var size: Int64
    var chunkCount: Int
    var hasher = SHA256()
    var bytes: Int64 = 0
    var chunks = 0
    var damaged = false

    func finish(_ problems: inout [String]) {
      let name = hexString(key)
      guard !damaged else { return }
      if chunks != chunkCount { problems.append("blob \(name): \(chunks) chunks, expected \(chunkCount)") }
      if bytes != size { problems.append("blob \(name): \(bytes) bytes, expected \(size)") }
      if Data(hasher.finalize()) != key { problems.append("blob \(name): content does not match its SHA-256") }
    }
  }

  private func checkBlobs(_ problems: inout [String]) async throws -> Int {
    var count = 0
    var current: BlobUnderCheck?
    var buffer = Data()
    var found: [String] = []
    let meter = ProgressMeter.current
    meter?.begin("checking stored content")
    try await session.forEach(
      """
      SELECT b.sha256, b.size, b.chunk_count, c.seq, c.zstd, c.data FROM blob b
      LEFT JOIN blob_chunk c ON c.blob = b.sha256 ORDER BY b.sha256, c.seq
      """
    ) { row in
      let (key, size, chunkCount, seq, compressed, data) = try row.decode((Data, Int64, Int, Int?, Bool?, Data?).self)
      if current?.key != key {
        current?.finish(&found)
        current = BlobUnderCheck(key: key, size: size, chunkCount: chunkCount)
        count += 1
        meter?.add(files: 1, bytes: size)
      }
      guard let seq, let compressed, let data, current?.damaged == false else { return }
      guard seq == current?.chunks else {
        found.append("blob \(hexString(key)): chunk \(current?.chunks ?? 0) is missing")
        current?.damaged = true
        return
      }
      do {
        try BlobCodec.decode(data, compressed: compressed, into: &buffer)
      } catch {
        found.append("blob \(hexString(key)): \(error)")
        current?.damaged = true
        return
      }
      current?.hasher.update(data: buffer)
      current?.bytes += Int64(buffer.count)
      current?.chunks += 1
    }
    current?.finish(&found)
    problems += found
    let strays =
      try await session.one(
        "SELECT COUNT(*) FROM blob_chunk c WHERE NOT EXISTS (SELECT 1 FROM blob b WHERE b.sha256 = c.blob)")?.decode(
        Int.self) ?? 0
    if strays > 0 {
      problems.append("\(strays) stored chunks belong to no blob (`confvault gc` removes them)")
    }
    return count
  }

  /// Each folder record once (a delta's base through the reader's cache): decoded, its digest
  /// recomputed, and every blob and folder it names present (and each blob noted as used, which
  /// `gc` relies on). The records are read in one pass and kept, compressed as stored, for the
  /// versions' tree digests.
  private func checkTrees(_ problems: inout [String]) async throws -> FolderReader {
    var records: [Data: StoredFolder] = [:]
    try await session.forEach("SELECT digest, base, depth, zstd, data FROM tree_node") { row in
      let (digest, base, depth, compressed, data) = try row.decode((Data, Data?, Int, Bool, Data).self)
      records[digest] = StoredFolder(digest: digest, base: base, depth: depth, compressed: compressed, data: data)
    }
    var blobs = Set<SHA256Hex>()
    try await session.forEach("SELECT sha256 FROM blob") { row in
      if let blob = SHA256Hex(bytes: try row.decode(Data.self)) { blobs.insert(blob) }
    }
    var used = Set<SHA256Hex>()
    try await session.forEach("SELECT blob FROM tree_blob") { row in
      if let blob = SHA256Hex(bytes: try row.decode(Data.self)) { used.insert(blob) }
    }
    let frozen = records
    let reader = FolderReader(shared: false) { frozen[$0] }
    var each = records.values.makeIterator()
    let found = try StoredTreeCheck(reader: reader).checkFolders(
      records.values.map { ($0.digest, $0.base) }, blobs: blobs, used: used, records: { each.next() })
    problems += found
    return reader
  }

  private func checkVersions(_ problems: inout [String], folders: FolderReader) async throws -> Int {
    var count = 0
    var trees = StoredTreeCheck(reader: folders)
    for app in try await session.rows("SELECT id, name, next_version FROM app ORDER BY name") {
      let (id, name, nextVersion) = try app.decode((Int64, String, Int).self)
      var previous = 0
      var found: [String] = []
      // Streamed: a long history is not held.
      try await session.forEach(
        "SELECT \(unescaped: Queries.versionColumns), tree FROM version WHERE app_id = \(id) ORDER BY number"
      ) { row in
        count += 1
        found += try trees.checkVersion(
          app: name, number: try row.get("number", as: Int.self), root: try row.get("tree", as: Data.self),
          previous: &previous
        ) { try Queries.version(row, app: name) }
      }
      problems += found
      if let problem = StoredTreeCheck.checkNextNumber(app: name, newest: previous, next: nextVersion) {
        problems.append(problem)
      }
    }
    problems += trees.finishVersions()
    return count
  }

  private func checkHeads(_ problems: inout [String]) async throws {
    let rows = try await session.rows(
      """
      SELECT a.name, e.name, h.version FROM head h JOIN environment e ON e.id = h.environment_id
      JOIN app a ON a.id = e.app_id
      WHERE NOT EXISTS (SELECT 1 FROM version v WHERE v.app_id = e.app_id AND v.number = h.version)
      """)
    for row in rows {
      let (app, environment, version) = try row.decode((String, String, Int).self)
      problems.append("app '\(app)' environment '\(environment)': head \(version) does not exist")
    }
  }

  private func checkAudit(_ problems: inout [String]) async throws {
    let known = AuditAction.allCases.map(\.rawValue)
    let damaged = try await session.rows(
      "SELECT id FROM audit WHERE NOT (action = ANY(\(known))) ORDER BY id LIMIT 20")
    for row in damaged { problems.append("audit entry \(try row.decode(Int64.self)): unknown action") }
  }
}
