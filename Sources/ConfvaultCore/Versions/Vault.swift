import Foundation
import Logging

/// Everything a user can do with versions, over any `VersionStore`.
///
/// Each operation that changes the store is one store transaction, so it happens whole or not at all;
/// each records who did it in the audit log.
public struct Vault: Sendable {
  public let store: any VersionStore
  public let logger: Logger

  public init(store: any VersionStore, logger: Logger) {
    self.store = store
    self.logger = logger
  }

  /// The outcome of an operation that adds a version unless nothing changed.
  public enum Change: Sendable {
    /// A new version, and what it changed against the environment's previous head.
    case created(Version, changes: [FileChange])
    /// The tree is the head's already: no version was made.
    case unchanged(head: Version)
  }

  /// The status colour of `version` given the production head.
  public static func status(of version: Version, productionHead: Int?) -> SyncStatus {
    if version.number == productionHead { return .currentProduction }
    return version.syncedAt == nil ? .notSynced : .synced
  }

  // MARK: Push

  /// Makes a new version of `environment` from a configuration folder.
  ///
  /// - Throws: `FolderRefusal` for symlinks and special files; `OperationError` when a file changes
  ///   while it is stored, or the app or environment does not exist.
  public func push(
    app: String, environment: String, folder: String, comment: String, author: String, backup: Bool,
    limits: ArchiveLimits = .default
  ) throws -> Change {
    let found = try ConfigurationFolder.scan(folder, limits: limits)
    let files = try ConfigurationArchive.hash(found)
    let absolutePaths = Dictionary(uniqueKeysWithValues: found.map { ($0.path, $0.absolutePath) })
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    defer { buffer.deallocate() }
    return try store.write { transaction -> Change in
      let target = try transaction.app(app).environment(environment)
      let head = try target.head.map { try transaction.version(app: app, number: $0) }
      if let head, head.treeDigest == TreeDigest(files: files) { return .unchanged(head: head) }
      let sink = transaction.blobSink()
      for file in files where try !transaction.hasBlob(file.sha256) {
        try sink.beginFile(path: file.path, mode: file.mode)
        var hasher = SHA256Stream()
        try ConfigurationFolder.stream(absolutePaths[file.path]!, buffer: buffer) { chunk in
          hasher.update(chunk)
          try sink.write(chunk)
        }
        guard hasher.finalize() == file.sha256 else {
          throw OperationError(
            .operationFailed, "`\(file.path)` changed while it was being pushed; nothing was stored, push again")
        }
        try sink.endFile(file)
      }
      let version = try transaction.addVersion(
        VersionDraft(
          app: app, environment: environment, author: author, createdAt: Timestamp.now(), comment: comment,
          origin: .push, backup: backup, files: files),
        pinReplacedHead: false)
      try transaction.appendAudit(
        AuditEntry(
          at: version.createdAt, author: author, app: app, environment: environment, action: "push",
          version: version.number, archiveSHA256: nil,
          detail: "pushed from \(folder)\(backup ? " as a backup" : "")"))
      return .created(version, changes: [])
    }.withChanges(from: store)
  }

  // MARK: Import

  /// What `import` read, and what it did.
  public struct ImportResult: Sendable {
    public enum Outcome: Sendable {
      case imported(Change)
      /// A dry run: what importing would change against the head (nil when there is none); nothing was written.
      case dryRun(changes: [FileChange], head: Version?)
    }

    public var contents: ArchiveContents
    public var outcome: Outcome
  }

  /// Reads and checks a whole archive; only then adds it as a new version of `environment`.
  ///
  /// The archive's bytes stream into the store inside one transaction that commits only after the
  /// last entry is checked, so a refused archive changes nothing.
  ///
  /// - Throws: `ArchiveRefusal` for a bad archive or one of another app (unless `allowOtherApp`).
  public func importArchive(
    _ source: ArchiveSource, app: String, environment: String, comment: String?, author: String,
    reader: ArchiveReader, allowOtherApp: Bool, dryRun: Bool
  ) throws -> ImportResult {
    if dryRun {
      let target = try store.app(app).environment(environment)
      let contents = try reader.read(from: source)
      try checkApp(contents, app: app, allowOtherApp: allowOtherApp)
      let headFiles = try target.head.map { try store.files(app: app, number: $0) } ?? []
      let head = try target.head.map { try store.version(app: app, number: $0) }
      let changes = FileChange.between(old: headFiles, new: contents.files)
      return ImportResult(contents: contents, outcome: .dryRun(changes: changes, head: head))
    }
    var read: ArchiveContents?
    let change = try store.write { transaction -> Change in
      let target = try transaction.app(app).environment(environment)
      let contents = try reader.read(from: source, into: transaction.blobSink())
      read = contents
      try checkApp(contents, app: app, allowOtherApp: allowOtherApp)
      let head = try target.head.map { try transaction.version(app: app, number: $0) }
      if let head, head.treeDigest == contents.treeDigest { return .unchanged(head: head) }
      let manifest = contents.manifest
      let origin = ImportOrigin(
        archiveSHA256: contents.archiveSHA256.value, app: manifest?.app, environment: manifest?.environment,
        version: manifest?.version?.number)
      let described = manifest?.version.map {
        "v\($0.number) of \(manifest?.app ?? "?")/\(manifest?.environment ?? "?")"
      }
      let version = try transaction.addVersion(
        VersionDraft(
          app: app, environment: environment, author: author, createdAt: Timestamp.now(),
          comment: comment ?? "import of \(source.displayName)" + (described.map { " (\($0))" } ?? ""),
          origin: .import, importedFrom: origin, files: contents.files),
        pinReplacedHead: true)
      try transaction.appendAudit(
        AuditEntry(
          at: version.createdAt, author: author, app: app, environment: environment, action: "import",
          version: version.number, archiveSHA256: contents.archiveSHA256.value,
          detail: "imported \(source.displayName)\(manifest == nil ? " (plain tar)" : "")"))
      return .created(version, changes: [])
    }.withChanges(from: store)
    return ImportResult(contents: read!, outcome: .imported(change))
  }

  private func checkApp(_ contents: ArchiveContents, app: String, allowOtherApp: Bool) throws {
    guard let other = contents.manifest?.app, other != app, !allowOtherApp else { return }
    throw ArchiveRefusal(
      entry: Manifest.entryName, rule: .otherApp,
      detail: "the archive is of app '\(other)', not '\(app)'; use --allow-other-app if that is intended")
  }

  // MARK: Export

  /// The version to export: `number`, or the head of `environment`.
  public func resolve(app: String, environment: String?, number: Int?) throws -> Version {
    if let number { return try store.version(app: app, number: number) }
    guard let environment else {
      throw OperationError(.usage, "name a version or an environment (--env)")
    }
    guard let head = try store.app(app).environment(environment).head else {
      throw OperationError(
        .operationFailed, "environment '\(environment)' of app '\(app)' has no version yet; push or import one first")
    }
    return try store.version(app: app, number: head)
  }

  /// Writes `version` as a v1 archive, streaming from the store; deterministic for a given version.
  ///
  /// - Parameter environment: the environment the archive is said to come from (its head was asked
  ///   for); nil for a version asked for by number, which names the environment it was made in.
  public func export(
    _ version: Version, environment: String?, compression: Compression, to output: ArchiveOutput, author: String
  ) throws -> WrittenArchive {
    let environment = environment ?? version.environment
    let written = try writeArchive(version, environment: environment, compression: compression, to: output)
    try store.write { transaction in
      try transaction.appendAudit(
        AuditEntry(
          at: Timestamp.now(), author: author, app: version.app, environment: environment,
          action: "export", version: version.number, archiveSHA256: written.sha256.value,
          detail: "exported to \(output.displayName) (\(compression.rawValue), \(written.bytes) bytes)"))
    }
    return written
  }

  /// Streams `version` from the store into a v1 archive, recording nothing.
  func writeArchive(
    _ version: Version, environment: String, compression: Compression, to output: ArchiveOutput
  ) throws -> WrittenArchive {
    let files = try store.files(app: version.app, number: version.number)
    let manifest = Manifest(
      app: version.app, environment: environment,
      version: Manifest.VersionInfo(
        number: version.number, author: version.author, createdAt: version.createdAt, comment: version.comment,
        origin: version.origin.rawValue, syncedAt: version.syncedAt),
      files: files)
    return try ConfigurationArchive.write(
      manifest: manifest, modificationTime: Int64(version.createdAt.timeIntervalSince1970),
      compression: compression, to: output
    ) { file, write in
      try store.readBlob(file.sha256, write)
    }
  }

  // MARK: Restore and sync

  /// Makes a new version of `environment` with the tree of version `number`.
  public func restore(app: String, number: Int, environment: String, comment: String?, author: String) throws
    -> Change
  {
    let files = try store.files(app: app, number: number)
    return try store.write { transaction -> Change in
      let target = try transaction.app(app).environment(environment)
      let head = try target.head.map { try transaction.version(app: app, number: $0) }
      if let head, head.treeDigest == TreeDigest(files: files) { return .unchanged(head: head) }
      let version = try transaction.addVersion(
        VersionDraft(
          app: app, environment: environment, author: author, createdAt: Timestamp.now(),
          comment: comment ?? "restore of version \(number)", origin: .restore, restoredFrom: number, files: files),
        pinReplacedHead: true)
      try transaction.appendAudit(
        AuditEntry(
          at: version.createdAt, author: author, app: app, environment: environment, action: "restore",
          version: version.number, archiveSHA256: nil, detail: "restored version \(number)"))
      return .created(version, changes: [])
    }.withChanges(from: store)
  }

  /// What `sync` did.
  public struct SyncResult: Sendable {
    public var version: Version
    public var environment: String
    /// The head it replaced (now pinned as a backup), if it was another version.
    public var replaced: Int?
    /// Whether the version was the environment's head already.
    public var wasHead: Bool
  }

  /// Puts version `number` into production (or `environment`): head moved, synced-at set, pinned.
  public func sync(app: String, number: Int, environment: String?, author: String) throws -> SyncResult {
    try store.write { transaction in
      let info = try transaction.app(app)
      guard let target = try environment.map({ try info.environment($0) }) ?? info.production else {
        throw OperationError(
          .operationFailed,
          "app '\(app)' has no production environment; name one with --to or create it with `confvault env create --production`"
        )
      }
      _ = try transaction.version(app: app, number: number)
      let replaced = target.head == number ? nil : target.head
      if target.head != number {
        try transaction.moveHead(app: app, environment: target.name, to: number)
      }
      let now = Timestamp.now()
      if target.isProduction {
        try transaction.markSynced(app: app, number: number, at: now)
      } else {
        try transaction.pin(app: app, number: number)  // synced-at is for production only
      }
      try transaction.appendAudit(
        AuditEntry(
          at: now, author: author, app: app, environment: target.name, action: "sync", version: number,
          archiveSHA256: nil,
          detail: "version \(number) synced to \(target.name)"
            + (replaced.map { "; replaced head \($0), pinned" } ?? "")))
      return SyncResult(
        version: try transaction.version(app: app, number: number), environment: target.name, replaced: replaced,
        wasHead: target.head == number)
    }
  }

  // MARK: Checkout

  /// Writes the head of `environment` into a new folder, atomically.
  public func checkout(app: String, environment: String, to folder: String) throws -> Version {
    let version = try resolve(app: app, environment: environment, number: nil)
    let target = try AtomicFolder(path: folder)
    let sink = FolderWritingSink(root: target.stagingPath)
    for file in try store.files(app: app, number: version.number) {
      try sink.beginFile(path: file.path, mode: file.mode)
      var hasher = SHA256Stream()
      try store.readBlob(file.sha256) { chunk in
        hasher.update(chunk)
        try sink.write(chunk)
      }
      guard hasher.finalize() == file.sha256 else {
        throw OperationError(.operationFailed, "stored content of `\(file.path)` is damaged; run `confvault check`")
      }
      try sink.endFile(file)
    }
    try target.commit()
    return version
  }
}

extension Vault.Change {
  /// Fills in what a new version changed against its parent (read after the transaction committed).
  fileprivate func withChanges(from store: any VersionStore) throws -> Vault.Change {
    guard case .created(let version, _) = self else { return self }
    return .created(
      version, changes: try store.changedFiles(app: version.app, from: version.parent, to: version.number))
  }
}
