import ConfvaultCore
import Foundation
import PostgresNIO

/// The SQL the store's reads share, inside and outside write transactions.
enum Queries {
  static func appID(_ session: SQLSession, _ name: String, lock: Bool = false) async throws -> Int64 {
    // FOR UPDATE: every change to an app holds its row, so numbers and head moves never interleave.
    let query: PostgresQuery =
      lock
      ? "SELECT id FROM app WHERE name = \(name) FOR UPDATE" : "SELECT id FROM app WHERE name = \(name)"
    if let row = try await session.one(query) { return try row.decode(Int64.self) }
    let names = try await session.rows("SELECT name FROM app ORDER BY name").map { try $0.decode(String.self) }
    throw OperationError(
      .notFound, "no app '\(name)' in the store; apps: \(names.isEmpty ? "none" : names.joined(separator: ", "))",
      hint: .createApp(name))
  }

  static func app(_ session: SQLSession, _ name: String) async throws -> AppInfo {
    guard let row = try await session.one("SELECT id, created_at FROM app WHERE name = \(name)") else {
      _ = try await appID(session, name)  // throws the message that lists the apps
      throw OperationError(.notFound, "no app '\(name)' in the store")
    }
    let (id, created) = try row.decode((Int64, Int64).self)
    return try await app(session, id: id, name: name, createdAt: created)
  }

  static func app(_ session: SQLSession, id: Int64, name: String, createdAt: Int64) async throws -> AppInfo {
    let environments = try await session.rows(
      """
      SELECT e.name, e.is_production, e.created_at, h.version FROM environment e
      LEFT JOIN head h ON h.environment_id = e.id WHERE e.app_id = \(id) ORDER BY e.id
      """
    ).map { row in
      let (name, production, created, head) = try row.decode((String, Bool, Int64, Int?).self)
      return EnvironmentInfo(name: name, isProduction: production, head: head, createdAt: StoredTime.date(created))
    }
    return AppInfo(name: name, createdAt: StoredTime.date(createdAt), environments: environments)
  }

  static let versionColumns = """
    number, environment, author, created_at, comment, origin, parent, restored_from, imported_archive_sha256,
    imported_app, imported_environment, imported_version, backup, synced_at, tree_digest, file_count, total_size
    """

  static func version(_ session: SQLSession, app: String, number: Int) async throws -> Version {
    let appID = try await appID(session, app)
    guard
      let row = try await session.one(
        "SELECT \(unescaped: versionColumns) FROM version WHERE app_id = \(appID) AND number = \(number)")
    else { throw try await missingVersion(session, app: app, appID: appID, number: number) }
    return try version(row, app: app)
  }

  static func missingVersion(_ session: SQLSession, app: String, appID: Int64, number: Int) async throws
    -> OperationError
  {
    let newest = try await session.one("SELECT MAX(number) FROM version WHERE app_id = \(appID)")?.decode(Int?.self)
    return OperationError(
      .notFound,
      "no version \(number) in app '\(app)'; "
        + (newest.map { "versions are 1 to \($0)" } ?? "it has no versions yet (push one first)"))
  }

  /// A version row (`versionColumns`) as a `Version`; a damaged row is an error, never a plausible version.
  static func version(_ row: PostgresRow, app: String) throws -> Version {
    let cells = row.makeRandomAccess()
    let number = try cells["number"].decode(Int.self)
    func damaged(_ what: String) -> OperationError {
      OperationError(.internal, "app '\(app)' version \(number) is damaged in the store: \(what)", hint: .runCheck)
    }
    let originText = try cells["origin"].decode(String.self)
    guard let origin = Origin(rawValue: originText) else { throw damaged("unknown origin `\(originText)`") }
    let digestText = try cells["tree_digest"].decode(String.self)
    guard let treeDigest = TreeDigest(digestText) else { throw damaged("tree digest `\(digestText)`") }
    var importedFrom: ImportOrigin?
    if let importSHA = try cells["imported_archive_sha256"].decode(String?.self) {
      guard let archiveSHA256 = SHA256Hex(importSHA) else { throw damaged("archive SHA-256 `\(importSHA)`") }
      importedFrom = ImportOrigin(
        archiveSHA256: archiveSHA256, app: try cells["imported_app"].decode(String?.self),
        environment: try cells["imported_environment"].decode(String?.self),
        version: try cells["imported_version"].decode(Int?.self))
    }
    return Version(
      app: app, number: number, environment: try cells["environment"].decode(String.self),
      author: try cells["author"].decode(String.self),
      createdAt: StoredTime.date(try cells["created_at"].decode(Int64.self)),
      comment: try cells["comment"].decode(String.self), origin: origin, parent: try cells["parent"].decode(Int?.self),
      restoredFrom: try cells["restored_from"].decode(Int?.self), importedFrom: importedFrom,
      backup: try cells["backup"].decode(Bool.self),
      syncedAt: try cells["synced_at"].decode(Int64?.self).map(StoredTime.date), treeDigest: treeDigest,
      fileCount: try cells["file_count"].decode(Int.self), totalSize: try cells["total_size"].decode(Int64.self))
  }

  /// A blob digest as stored; a damaged one is an error.
  static func digest(_ bytes: Data) throws -> SHA256Hex {
    guard let digest = SHA256Hex(bytes: bytes) else {
      throw OperationError(.internal, "a stored digest is damaged (\(bytes.count) bytes)", hint: .runCheck)
    }
    return digest
  }

  static func treeRoot(_ session: SQLSession, app: String, number: Int) async throws -> Data {
    let appID = try await appID(session, app)
    guard
      let row = try await session.one("SELECT tree FROM version WHERE app_id = \(appID) AND number = \(number)")
    else { throw try await missingVersion(session, app: app, appID: appID, number: number) }
    return try row.decode(Data.self)
  }

  /// The records of `digests` and of every folder their delta chains lead to, in one recursive query.
  static func records(_ session: SQLSession, _ digests: some Collection<Data>) async throws -> [Data: StoredFolder] {
    guard !digests.isEmpty else { return [:] }
    var records: [Data: StoredFolder] = [:]
    try await session.forEach(
      """
      WITH RECURSIVE chain(digest, base, depth, zstd, data) AS (
        SELECT digest, base, depth, zstd, data FROM tree_node WHERE digest = ANY(\(digests.map(\.buffer)))
        UNION
        SELECT n.digest, n.base, n.depth, n.zstd, n.data FROM tree_node n JOIN chain c ON n.digest = c.base
      )
      SELECT digest, base, depth, zstd, data FROM chain
      """
    ) { row in
      let (digest, base, depth, compressed, data) = try row.decode((Data, Data?, Int, Bool, Data).self)
      records[digest] = StoredFolder(digest: digest, base: base, depth: depth, compressed: compressed, data: data)
    }
    return records
  }

  /// A reader of the folders in `records`, through the process's cache of decoded folders.
  static func reader(_ records: [Data: StoredFolder], shared: Bool = true) -> FolderReader {
    FolderReader(shared: shared) { records[$0] }
  }

  /// The entries of each of `nodes`: the ones not decoded already are read in one query.
  static func entries(_ session: SQLSession, nodes: Set<Data>) async throws -> [Data: [TreeNode.Entry]] {
    let cached = reader([:])
    var result: [Data: [TreeNode.Entry]] = [:]
    var missing: [Data] = []
    for node in nodes {
      if let entries = try? cached.entries(node) { result[node] = entries } else { missing.append(node) }
    }
    let folders = reader(try await records(session, missing))
    for node in missing { result[node] = try folders.entries(node) }
    return result
  }

  /// Every file below the folder `root`, a level at a time: a tree read costs one round trip to the
  /// server per level of folders, not one per folder.
  static func flatten(_ session: SQLSession, root: Data) async throws -> [ManifestFile] {
    var files: [ManifestFile] = []
    var level: [(node: Data, prefix: String)] = [(root, "")]
    var depth = 0
    while !level.isEmpty {
      guard depth <= TreeNode.deepestFolder else { throw TreeNode.tooDeep(root) }
      depth += 1
      let entries = try await Self.entries(session, nodes: Set(level.map(\.node)))
      var next: [(node: Data, prefix: String)] = []
      for (node, prefix) in level {
        for entry in entries[node] ?? [] {
          switch entry {
          case .file(let name, let mode, let size, let blob):
            files.append(ManifestFile(path: prefix + name, size: size, mode: mode, sha256: blob))
          case .folder(let name, let child):
            next.append((child, prefix + name + "/"))
          }
        }
      }
      level = next
    }
    return files
  }

  /// Stores `records` and notes every blob they name, so that `gc` knows the blob is used; in one
  /// statement per table. Folders are content-addressed: one another server stores meanwhile is the
  /// same folder (`ON CONFLICT DO NOTHING`).
  static func insert(_ session: SQLSession, _ records: [StoredFolder]) async throws {
    guard !records.isEmpty else { return }
    try await session.execute(
      """
      INSERT INTO tree_node (digest, base, depth, zstd, data)
      SELECT digest, NULLIF(base, ''::bytea), depth, zstd, data
      FROM unnest(\(records.map(\.digest.buffer))::bytea[], \(records.map { ($0.base ?? Data()).buffer })::bytea[],
        \(records.map(\.depth))::integer[], \(records.map(\.compressed))::boolean[], \(records.map(\.data.buffer))::bytea[])
        AS new(digest, base, depth, zstd, data)
      ON CONFLICT DO NOTHING
      """)
    let blobs = Set(try records.flatMap(FolderRecord.namedBlobs))
    guard !blobs.isEmpty else { return }
    try await session.execute(
      """
      INSERT INTO tree_blob (blob) SELECT unnest(\(blobs.map(\.bytes.buffer))::bytea[]) ON CONFLICT DO NOTHING
      """)
  }

  /// The records of the folders along each of `paths` in the tree `root`, read a level at a time with
  /// their delta chains: what `BaseFinder` reads to find a new folder's base.
  static func records(
    _ session: SQLSession, alongPaths paths: Set<String>, in root: Data?
  ) async throws -> [Data: StoredFolder] {
    guard let root else { return [:] }
    var wanted = Set<String>()
    for path in paths {
      var prefix = path
      while !prefix.isEmpty {
        wanted.insert(prefix)
        prefix = EntryPath.folder(of: prefix)
      }
    }
    var all: [Data: StoredFolder] = [:]
    var level: [(node: Data, path: String)] = [(root, "")]
    while !level.isEmpty {
      all.merge(try await records(session, level.map(\.node).filter { all[$0] == nil })) { a, _ in a }
      let folders = reader(all)
      var next: [(node: Data, path: String)] = []
      for (node, path) in level {
        for case .folder(let name, let child) in try folders.entries(node) {
          let childPath = path.isEmpty ? name : path + "/" + name
          if wanted.contains(childPath) { next.append((child, childPath)) }
        }
      }
      level = next
    }
    return all
  }

  /// The files that differ between two trees, a level at a time: each level's changed folders are read
  /// in one query, and a folder with the same digest on both sides is never read.
  static func diff(_ session: SQLSession, old: Data?, new: Data) async throws -> [FileChange] {
    var changes: [FileChange] = []
    var level: [(old: Data?, new: Data?, prefix: String)] = [(old, new, "")]
    var depth = 0
    while !level.isEmpty {
      guard depth <= TreeNode.deepestFolder else { throw TreeNode.tooDeep(new) }
      depth += 1
      level.removeAll { $0.old == $0.new }
      let entries = try await Self.entries(session, nodes: Set(level.flatMap { [$0.old, $0.new].compactMap { $0 } }))
      var next: [(old: Data?, new: Data?, prefix: String)] = []
      for pair in level {
        let oldByName = Dictionary(
          (pair.old.flatMap { entries[$0] } ?? []).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let newByName = Dictionary(
          (pair.new.flatMap { entries[$0] } ?? []).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for name in Set(oldByName.keys).union(newByName.keys) {
          let path = pair.prefix + name
          let (oldFolder, oldFile) = TreeNode.Entry.split(oldByName[name], at: path)
          let (newFolder, newFile) = TreeNode.Entry.split(newByName[name], at: path)
          if oldFolder != nil || newFolder != nil { next.append((oldFolder, newFolder, path + "/")) }
          if let change = FileChange(path: path, old: oldFile, new: newFile) { changes.append(change) }
        }
      }
      level = next
    }
    changes.sort { EntryPath.byteOrder($0.path, $1.path) }  // no copy of the list, only a sort's scratch
    return changes
  }

  static func auditEntry(_ row: PostgresRow) throws -> AuditEntry {
    let (id, at, author, app, environment, actionText, version, archive, detail) = try row.decode(
      (Int64, Int64, String, String, String?, String, Int?, String?, String).self)
    guard let action = AuditAction(rawValue: actionText) else {
      throw OperationError(.internal, "audit entry \(id) is damaged: unknown action `\(actionText)`", hint: .runCheck)
    }
    return AuditEntry(
      id: id, at: StoredTime.date(at), author: author, app: app, environment: environment, action: action,
      version: version, archiveSHA256: archive.flatMap(SHA256Hex.init), detail: detail)
  }

  static let auditColumns = "id, at, author, app, environment, action, version, archive_sha256, detail"
}
