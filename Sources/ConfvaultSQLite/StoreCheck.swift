import ConfvaultCore
import Crypto
import Foundation
import GRDB

/// `confvault check`: every blob's hash, every tree entry's target, every version's tree digest,
/// every head, and the numbering.
struct StoreCheck {
  let db: Database

  func run() throws -> CheckReport {
    var problems: [String] = []
    let blobs = try checkBlobs(&problems)
    try checkTrees(&problems)
    let versions = try checkVersions(&problems)
    try checkHeads(&problems)
    try checkAudit(&problems)
    let unreferenced =
      try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM blob WHERE sha256 NOT IN (SELECT target FROM tree_entry)") ?? 0
    return CheckReport(problems: problems, unreferencedBlobs: unreferenced, versions: versions, blobs: blobs)
  }

  private func checkBlobs(_ problems: inout [String]) throws -> Int {
    var count = 0
    let blobs = try Row.fetchCursor(db, sql: "SELECT sha256, size, chunk_count FROM blob")
    var buffer = Data()
    let meter = ProgressMeter.current
    meter?.begin("checking stored content")
    while let row = try blobs.next() {
      count += 1
      meter?.add(files: 1, bytes: row["size"])
      let key: Data = row["sha256"]
      let name = hexString(key)
      var hasher = SHA256()
      var size: Int64 = 0
      var chunks = 0
      let rows = try Row.fetchCursor(
        db, sql: "SELECT seq, zstd, data FROM blob_chunk WHERE blob = ? ORDER BY seq", arguments: [key])
      do {
        while let chunk = try rows.next() {
          guard chunk["seq"] as Int == chunks else {
            problems.append("blob \(name): chunk \(chunks) is missing")
            break
          }
          try BlobCodec.decode(chunk["data"], compressed: chunk["zstd"], into: &buffer)
          hasher.update(data: buffer)
          size += Int64(buffer.count)
          chunks += 1
        }
      } catch {
        problems.append("blob \(name): \(error)")
        continue
      }
      if chunks != row["chunk_count"] as Int {
        problems.append("blob \(name): \(chunks) chunks, expected \(row["chunk_count"] as Int)")
      }
      if size != row["size"] as Int64 {
        problems.append("blob \(name): \(size) bytes, expected \(row["size"] as Int64)")
      }
      if Data(hasher.finalize()) != key { problems.append("blob \(name): content does not match its SHA-256") }
    }
    let strays =
      try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM blob_chunk WHERE blob NOT IN (SELECT sha256 FROM blob)") ?? 0
    if strays > 0 {
      problems.append("\(strays) stored chunks belong to no blob (`confvault gc` removes them)")
    }
    return count
  }

  private func checkTrees(_ problems: inout [String]) throws {
    let missingBlobs = try Row.fetchAll(
      db,
      sql: "SELECT node, name, target FROM tree_entry WHERE is_folder = 0 AND target NOT IN (SELECT sha256 FROM blob)")
    for row in missingBlobs.prefix(20) {
      problems.append(
        "file `\(row["name"] as String)` (folder \(hexString(row["node"] as Data))) refers to a missing blob \(hexString(row["target"] as Data))"
      )
    }
    let missingFolders =
      try Int.fetchOne(
        db, sql: "SELECT COUNT(*) FROM tree_entry WHERE is_folder = 1 AND target NOT IN (SELECT digest FROM tree_node)")
      ?? 0
    if missingFolders > 0 { problems.append("\(missingFolders) folder entries refer to missing folders") }
    let nodes = try Data.fetchCursor(db, sql: "SELECT digest FROM tree_node")
    while let digest = try nodes.next() {
      let entries = try Queries.entries(db, node: digest).map { entry -> TreeNode.Entry in
        entry.isFolder
          ? .folder(name: entry.name, node: entry.target)
          : .file(name: entry.name, mode: entry.mode, size: entry.size, blob: try Queries.digest(entry.target))
      }
      if TreeNode(entries: entries).digest != digest {
        problems.append("folder \(hexString(digest)): its entries do not match its digest")
      }
    }
  }

  private func checkVersions(_ problems: inout [String]) throws -> Int {
    var count = 0
    var digestOfRoot: [Data: (TreeDigest, Int, Int64)] = [:]
    let apps = try Row.fetchAll(db, sql: "SELECT id, name, next_version FROM app")
    for app in apps {
      let name: String = app["name"]
      let rows = try Row.fetchAll(
        db, sql: "SELECT * FROM version WHERE app_id = ? ORDER BY number", arguments: [app["id"] as Int64])
      var previous = 0
      for row in rows {
        count += 1
        let label = "app '\(name)' version \(row["number"] as Int)"
        let version: Version
        do {
          version = try Queries.version(row, app: name)
        } catch {
          problems.append("\(label): \(error)")
          continue
        }
        if version.number <= previous { problems.append("\(label): numbering is not increasing") }
        previous = version.number
        if let parent = version.parent, parent >= version.number {
          problems.append("\(label): parent \(parent) is not older")
        }
        let root: Data = row["tree"]
        guard try Bool.fetchOne(db, sql: "SELECT 1 FROM tree_node WHERE digest = ?", arguments: [root]) == true else {
          problems.append("\(label): its tree is missing")
          continue
        }
        if digestOfRoot[root] == nil {
          let files = try Queries.flatten(db, node: root)
          digestOfRoot[root] = (TreeDigest(files: files), files.count, files.reduce(0) { $0 + $1.size })
        }
        let (digest, files, size) = digestOfRoot[root]!
        if digest != version.treeDigest {
          problems.append("\(label): tree digest \(version.treeDigest) does not match its files (\(digest))")
        }
        if files != version.fileCount || size != version.totalSize {
          problems.append("\(label): file count or size does not match its files")
        }
      }
      if previous >= app["next_version"] as Int {
        problems.append("app '\(name)': the next version number \(app["next_version"] as Int) is already used")
      }
    }
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
