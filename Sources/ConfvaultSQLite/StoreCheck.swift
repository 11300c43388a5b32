import ConfvaultCore
import Crypto
import Foundation
import GRDB

/// `confvault check`, in two halves that can run at once on connections of their own: the stored
/// content (`content()`: every folder record once, then every blob's hash), and the rest (`rest()`:
/// every version's tree digest, every head, and the numbering).
struct StoreCheck {
  let db: Database
  /// Where both halves keep the folders they decode: a folder is content-addressed, so what one
  /// half decoded, the other need not decode again (whether it matches its digest, the content
  /// half says).
  let decodedFolders: FolderCache

  /// What `rest()` finds and counts.
  struct Rest {
    var problems: [String]
    var versions: Int
    var unreferencedBlobs: Int
    var folders: Int
    var folderBytes: Int64
  }

  /// Every version, head and audit entry checked, and what the report counts but the blobs.
  func rest() throws -> Rest {
    var problems: [String] = []
    let versions = try checkVersions(&problems)
    try checkHeads(&problems)
    try checkAudit(&problems)
    let unreferenced =
      try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM (\(Queries.unreferencedBlobs(storedBefore: nil)))") ?? 0
    let folders = try Row.fetchOne(db, sql: "SELECT COUNT(*), TOTAL(LENGTH(data)) FROM tree_node")
    return Rest(
      problems: problems, versions: versions, unreferencedBlobs: unreferenced, folders: folders?[0] ?? 0,
      folderBytes: Int64(folders?[1] as Double? ?? 0))
  }

  /// Every folder record once, then every blob's chunks decoded and hashed: the problems found, and
  /// how many blobs there are.
  ///
  /// Folders first: the other half makes each version's lines from the same folders, and finds
  /// many of them decoded here already (`decodedFolders`). Checked after the blobs, most folders were
  /// decoded by the other half first and by this one again: on the replay fixture, the two halves'
  /// threads ran 190 to 225 ms in all that way, 145 to 160 ms this way (`perf sched`).
  func content() throws -> (problems: [String], blobs: Int) {
    ProgressMeter.current?.begin("checking stored content")
    var problems = try folderProblems()
    let blobs = try checkBlobs(&problems)
    return (problems, blobs)
  }

  /// The bytes of delta bases (as stored) kept for the deltas that follow, at most.
  static let basesKept = 8 << 20

  /// Every blob's chunks decoded and hashed, on every core (`StoredBlobCheck`).
  private func checkBlobs(_ problems: inout [String]) throws -> Int {
    // Blobs in the order of their chunks, whose rows are read in one pass: looked up blob by blob
    // (a statement run for each range), reading them took nearly half of this check of blobs.
    // Columns are read by position, as named in these statements.
    let blobs = try Row.fetchCursor(
      db, sql: "SELECT sha256, size, chunk_count, first_chunk, base FROM blob ORDER BY first_chunk")
    let chunkRows = try Row.fetchCursor(db, sql: "SELECT id, zstd, data FROM blob_chunk ORDER BY id")
    // For a blob whose range begins below the end of one read before (in a damaged store only).
    let rangeRows = try db.makeStatement(
      sql: "SELECT id, zstd, data FROM blob_chunk WHERE id >= ? AND id < ? ORDER BY id")
    let check = StoredBlobCheck()
    let wholeChunks = try Int64.fetchAll(
      db, sql: "SELECT first_chunk FROM blob WHERE base IS NULL AND chunk_count = 1 ORDER BY first_chunk")
    // The bases read lately: most bases serve several deltas (the replay fixture's 4,855 deltas have
    // 1,090), and reading each again was a quarter of this check.
    var bases: [Int64: Result<BlobCodec.Chunk, StoredBlobCheck.DeltaBaseProblem>] = [:]
    var basesBytes = 0
    func keep(base: Int64, _ read: Result<BlobCodec.Chunk, StoredBlobCheck.DeltaBaseProblem>) {
      let bytes = (try? read.get())?.data.count ?? 0
      if basesBytes + bytes > StoreCheck.basesKept {
        bases.removeAll(keepingCapacity: true)
        basesBytes = 0
      }
      bases[base] = read
      basesBytes += bytes
    }
    // A base is a whole blob's one chunk, stored before its deltas: kept as the pass reads it, it
    // need not be read again for them.
    let baseRows = Set(try Int64.fetchAll(db, sql: "SELECT DISTINCT base FROM blob WHERE base IS NOT NULL"))
    // The chunk row the pass stands on (read when the pass reaches it), and the row every range
    // read in the pass so far ends before.
    var chunkRow = try chunkRows.next()
    var passedUpTo = Int64.min
    while let row = try blobs.next() {
      var blob = StoredBlobCheck.Blob(key: row[0], size: row[1], chunkCount: row[2])
      if let base = row[4] as Int64? {
        if let known = bases[base] {
          blob.base = known
        } else {
          let read = try deltaBase(base, wholeChunks: wholeChunks)
          keep(base: base, read)
          blob.base = read
        }
      }
      let first: Int64 = row[3]
      let end = BlobWriter.end(first, row[2])
      let next: () throws -> (seq: Int, compressed: Bool, data: Data)?
      if first >= passedUpTo {
        passedUpTo = end
        next = {
          while let chunk = chunkRow, (chunk[0] as Int64) < first { chunkRow = try chunkRows.next() }
          guard let chunk = chunkRow else { return nil }
          let id: Int64 = chunk[0]
          guard id < end else { return nil }
          let read: (seq: Int, compressed: Bool, data: Data) = (
            Int(truncatingIfNeeded: id &- first), chunk[1], chunk[2]
          )
          chunkRow = try chunkRows.next()
          return read
        }
      } else {
        let rows = try Row.fetchCursor(rangeRows, arguments: [first, end])
        next = { try rows.next().map { (Int(truncatingIfNeeded: ($0[0] as Int64) &- first), $0[1], $0[2]) } }
      }
      // A large blob is checked as it streams, so a batch never holds more than a few chunks of it.
      guard blob.chunkCount <= 4 else {
        try check.checkStreaming(blob, next: next)
        continue
      }
      while let chunk = try next() { blob.chunks.append(chunk) }
      if blob.base == nil, blob.chunkCount == 1, baseRows.contains(first), let chunk = blob.chunks.first,
        chunk.seq == 0
      {
        keep(base: first, .success(BlobCodec.Chunk(data: chunk.data, compressed: chunk.compressed)))
      }
      check.add(blob)
    }
    check.finish()
    problems += check.problems
    let (strays, overlapping) = try BlobWriter.chunkRanges(db)
    if !strays.isEmpty {
      problems.append("\(strays.count) stored chunks belong to no blob (`confvault gc` removes them)")
    }
    for key in overlapping.prefix(20) {
      problems.append("blob \(hexString(key)): its chunks overlap another blob's")
    }
    return check.count
  }

  /// The one chunk of a delta's base, which must be the one chunk of a blob stored whole: one of
  /// `wholeChunks`, those blobs' chunk rows in order.
  private func deltaBase(_ row: Int64, wholeChunks: [Int64]) throws -> Result<
    BlobCodec.Chunk, StoredBlobCheck.DeltaBaseProblem
  > {
    let low = wholeChunks.partitionPoint { $0 < row }
    guard let chunk = try BlobWriter.chunk(db, row: row) else {
      return .failure(.init("a delta whose base, stored chunk \(row), is not stored"))
    }
    guard low < wholeChunks.count, wholeChunks[low] == row else {
      return .failure(.init("a delta whose base, stored chunk \(row), is not the one chunk of a blob stored whole"))
    }
    return .success(chunk)
  }

  /// Each folder record once, in the order they were stored (a delta's base before it): decoded,
  /// its digest recomputed, and every blob and folder it names present (and each blob noted as
  /// used, which `gc` relies on).
  private func folderProblems() throws -> [String] {
    var problems: [String] = []
    let index = try Row.fetchAll(
      db, sql: "SELECT n.digest, \(Queries.baseDigest) AS base FROM tree_node n LEFT JOIN tree_node b ON b.id = n.base"
    ).map {
      (digest: $0["digest"] as Data, base: $0["base"] as Data?)
    }
    let blobs = Set(try Data.fetchAll(db, sql: "SELECT sha256 FROM blob").compactMap(SHA256Hex.init(bytes:)))
    let used = Set(
      try Data.fetchAll(db, sql: "SELECT sha256 FROM blob WHERE named = 1").compactMap(SHA256Hex.init(bytes:)))
    let check = StoredTreeCheck(reader: Queries.folders(db, cache: decodedFolders))
    // Read as one cursor: looked up one by one, by digest, they took a third of this half's time.
    let records = try Row.fetchCursor(
      db,
      sql: """
        SELECT n.digest, \(Queries.baseDigest) AS base, n.depth, n.zstd, n.data
        FROM tree_node n LEFT JOIN tree_node b ON b.id = n.base ORDER BY n.id
        """)
    let found = try check.checkFolders(index, blobs: blobs, used: used) {
      try records.next().map { row in
        StoredFolder(
          digest: row["digest"], base: row["base"], depth: row["depth"], compressed: row["zstd"], data: row["data"])
      }
    }
    // A folder is stored once (no unique index says so: the digest index keeps 8 bytes of each).
    for row in try Row.fetchAll(
      db, sql: "SELECT digest, COUNT(*) AS count FROM tree_node GROUP BY digest HAVING COUNT(*) > 1")
    {
      problems.append("folder \(hexString(row["digest"] as Data)) is stored \(row["count"] as Int) times")
    }
    return problems + found
  }

  private func checkVersions(_ problems: inout [String]) throws -> Int {
    var count = 0
    var trees = StoredTreeCheck(reader: Queries.folders(db, cache: decodedFolders))
    let apps = try Row.fetchAll(db, sql: "SELECT id, name, next_version FROM app")
    for app in apps {
      let name: String = app["name"]
      // A version's tree is its root record's row; one that is gone reads as a digest no folder has.
      // Read as a cursor: a long history is not held.
      let rows = try Row.fetchCursor(
        db,
        sql: """
          SELECT v.*, COALESCE(n.digest, zeroblob(32)) AS root FROM version v LEFT JOIN tree_node n ON n.id = v.tree
          WHERE v.app_id = ? ORDER BY v.number
          """, arguments: [app["id"] as Int64])
      var previous = 0
      while let row = try rows.next() {
        count += 1
        problems += try trees.checkVersion(app: name, number: row["number"], root: row["root"], previous: &previous) {
          try Queries.version(row, app: name)
        }
      }
      if let problem = StoredTreeCheck.checkNextNumber(app: name, newest: previous, next: app["next_version"]) {
        problems.append(problem)
      }
    }
    problems += trees.finishVersions()
    return count
  }

  private func checkHeads(_ problems: inout [String]) throws {
    let rows = try Row.fetchAll(
      db,
      sql: """
        SELECT a.name AS app, e.name AS environment, h.version,
          (SELECT 1 FROM version v WHERE v.app_id = e.app_id AND v.number = h.version) AS present
        FROM head h JOIN environment e ON e.id = h.environment_id JOIN app a ON a.id = e.app_id
        """)
    for row in rows where row["present"] as Int? == nil {
      problems.append(
        "app '\(row["app"] as String)' environment '\(row["environment"] as String)': head \(row["version"] as Int) does not exist"
      )
    }
    let strays =
      try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM head WHERE environment_id NOT IN (SELECT id FROM environment)")
      ?? 0
    if strays > 0 { problems.append("\(strays) heads belong to no environment") }
  }

  private func checkAudit(_ problems: inout [String]) throws {
    let known = AuditAction.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ")
    let damaged = try Int64.fetchAll(db, sql: "SELECT id FROM audit WHERE action NOT IN (\(known))")
    for id in damaged.prefix(20) { problems.append("audit entry \(id): unknown action") }
  }
}
