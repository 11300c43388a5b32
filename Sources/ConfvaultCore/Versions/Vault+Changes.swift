import Foundation
import Logging

extension Vault {
  // MARK: Push

  /// What `push` did, and what it left out of the folder.
  public struct FolderPush: Sendable {
    public var change: Change
    /// What the ignore rules left out (see `FolderScan.ignored`).
    public var ignored: [String]
    /// Set when the folder was pushed although the head had moved past its checkout, as asked.
    public var pushedBehindHead: FolderBehindHead?
  }

  /// Makes a new version of `environment` from a configuration folder.
  ///
  /// A folder checked out from this environment (its checkout record names it and `storeName`) is
  /// refused when the head has moved past the version it was checked out from, unless
  /// `pushBehindHead`: it would silently undo what changed since. After the push, the record names
  /// the new head, so the next push from the folder is decided on it.
  ///
  /// - Parameters:
  ///   - applyingIgnoreRules: leave out what the built-in rules and the folder's `.confvaultignore` say;
  ///     false keeps everything but the checkout record.
  ///   - storeName: how the front end names this store in checkout records; nil passes the record over.
  ///   - statCache: the file of the folder's stat cache (`StatCache`); nil reads every file.
  ///   - startedScan: the folder's scan, begun already: its own limits, rules and stat cache are
  ///     used, not `limits`, `applyingIgnoreRules` and `statCache`. Nil scans the folder with those
  ///     once the app and environment are found.
  ///   - expectedHead: the head the caller decided on, if it showed one; nil decides on the head now.
  ///   - approval: asked with the change's preview before anything is stored; when someone saw it,
  ///     the change is decided on the head it showed.
  /// - Throws: `FolderRefusal` for symlinks and special files; `FolderBehindHead` (a `.conflict`); a
  ///   `.conflict` when a file changes while it is stored, or the head is no longer `expectedHead`;
  ///   `.notFound` for a missing app or environment.
  public func push(
    app: String, environment: String, folder: String, comment: String, author: String, backup: Bool,
    limits: ArchiveLimits = .default, applyingIgnoreRules: Bool = true, storeName: String? = nil,
    pushBehindHead: Bool = false, allowEmpty: Bool = false, expectedHead: ExpectedHead? = nil,
    approval: Approval? = nil, statCache: String? = nil, startedScan: StartedScan? = nil, logger: Logger
  ) async throws -> FolderPush {
    try checkText(comment, author)
    _ = try await store.app(app).environment(environment)
    let ignored: [String]
    var behind: FolderBehindHead?
    let record: CheckoutRecord?
    let decided: Decided
    // The folder's files, where they are and their tree are let go at the end of this scope: the
    // list of changes, made after it, is the peak of a large first push.
    do {
      let files: [ManifestFile]
      let paths: ScannedPaths
      let tree: VersionTree
      do {
        let scanned = try await Self.scanned(
          folder, started: startedScan, limits: limits, applyingIgnoreRules: applyingIgnoreRules,
          statCache: statCache, logger: logger)
        (files, paths, ignored) = (scanned.files, scanned.paths, scanned.ignored)
        // The stat cache is written on another thread while the tree is made, and let go with this
        // scope: the scan's list of files it keeps, with their statuses, is not held through the push
        // (100,000 files: 10 MiB). The tree's digest decides whether anything changed; its folders,
        // made at the same time, what to store. Past `sideBySideFiles`, one after the other: side by
        // side, the allocations of three threads left the allocator holding 10 MiB more at the peak
        // of a 100,000-file push.
        if scanned.files.count <= Self.sideBySideFiles {
          async let cacheSaved: Void = save(scanned.cache, logger: logger)
          tree = try await offload { VersionTree(files: scanned.files) }
          await cacheSaved
        } else {
          await save(scanned.cache, logger: logger)
          tree = try await offload { VersionTree(files: scanned.files, digest: TreeDigest(files: scanned.files)) }
        }
      }
      // As an import of an empty archive is refused, so is an empty folder: it would empty the environment.
      if files.isEmpty && !allowEmpty {
        throw OperationError(
          .badInput,
          "`\(folder)` holds no files\(ignored.isEmpty ? "" : " but ignored ones"): pushing it would empty \(app)/\(environment); nothing was written",
          hint: .allowEmpty)
      }
      let digest = tree.digest
      logger.debug("folder hashed", metadata: ["folder": "\(folder)", "files": "\(files.count)"])
      record = storeName.flatMap { name in
        CheckoutRecord.read(from: folder, logger: logger).flatMap {
          $0.names(app: app, environment: environment, store: name) ? $0 : nil
        }
      }
      /// Refuses a folder the head has moved past, unless asked; decided again with the head.
      func checkBehindHead(_ head: Int?) async throws {
        guard let record else { return }
        behind = try await behindHead(folder: folder, record: record, head: head)
        if let behind, !pushBehindHead { throw behind }
      }
      if let head = try await decisionHead(app: app, environment: environment, tree: digest, expectedHead).unchanged {
        decided = .unchanged(head)
      } else {
        try await checkBehindHead(try await store.app(app).environment(environment).head)
        var expectedHead = expectedHead
        if let approval {
          let preview = try await approvalPreview(
            app: app, environment: environment, files: files,
            content: { BlobFile(sha256: $0.sha256, size: $0.size, path: paths[$0.path]!) }, logger: logger)
          if let expectedHead, expectedHead != preview.expectedHead {
            _ = try await decisionHead(app: app, environment: environment, tree: digest, expectedHead)
          }
          if try await approval(preview) { expectedHead = preview.expectedHead }
        }
        // Content first, outside the decision: it is idempotent, and a file changed meanwhile is refused
        // here once, not decided again.
        try await storeMissing(tree, app: app, environment: environment) {
          BlobFile(sha256: $0.sha256, size: $0.size, path: paths[$0.path]!)
        }
        decided = try await deciding(expectedHead: expectedHead, logger: logger) {
          let (headNumber, unchanged) = try await decisionHead(
            app: app, environment: environment, tree: digest, expectedHead)
          if let unchanged { return .unchanged(unchanged) }
          try await checkBehindHead(headNumber)
          let version = try await store.apply(
            StoreChange(
              .addVersion(
                VersionDraft(
                  app: app, environment: environment, comment: comment, origin: .push, backup: backup, tree: tree),
                expectedHead: headNumber),
              author: author, at: clock(), detail: "pushed from \(folder)\(backup ? " as a backup" : "")"))
          return .created(version!)
        }
      }
    }
    let change = try await change(decided)
    if let record {
      let head: Version
      switch change {
      case .created(let version, _), .unchanged(let version): head = version
      }
      if head.number != record.version {
        // The folder now holds the head: the next push from it is decided on the head.
        do {
          try CheckoutRecord(head, environment: environment, store: record.store).replace(in: folder)
        } catch {
          logger.warning(
            "the checkout record of `\(folder)` could not be moved on to v\(head.number): \(error); the next push from it may be refused"
          )
        }
      }
    }
    if case .unchanged = change { behind = nil }
    return FolderPush(change: change, ignored: ignored, pushedBehindHead: behind)
  }

  /// The head to decide on (the caller's, or the environment's now) and whether its tree is `tree` already.
  func decisionHead(
    app: String, environment: String, tree: TreeDigest, _ expectedHead: ExpectedHead?
  ) async throws -> (number: Int?, unchanged: Version?) {
    let current = try await store.app(app).environment(environment).head
    if let expectedHead, expectedHead.number != current {
      // The caller decided on a head that is no longer the head: even a tree that matches it is no
      // answer, since the change it previewed is not the one it would make now.
      throw OperationError(
        .conflict,
        "the head of \(app)/\(environment) is \(current.map { "v\($0)" } ?? "no version"), not \(expectedHead.number.map { "v\($0)" } ?? "no version") as when the change was decided; nothing was changed"
      )
    }
    guard let number = decisionHead(expectedHead, current: current) else { return (nil, nil) }
    let head = try await store.version(app: app, number: number)
    return (number, head.treeDigest == tree ? head : nil)
  }

  /// Stores the content of the files of `tree` the store lacks, each read from where `source` says,
  /// with the content it most likely resembles in the environment's head (`SimilarFiles`).
  func storeMissing(
    _ tree: VersionTree, app: String, environment: String, source: (ManifestFile) -> BlobFile
  ) async throws {
    let missing = try await store.missingBlobs(inTree: tree)
    guard !missing.isEmpty else { return }
    let files = tree.files
    // Many new contents take memory to store: the folders are built again when the version is added.
    if missing.count > SimilarFiles.fewFiles { tree.releaseFolders() }
    // A few new contents (a push of a changed file or two) are found in one pass that compares
    // digests word by word and stops at the last: no digest of 20,000 files hashed for a set.
    var newFiles: [ManifestFile]?
    if missing.count <= SimilarFiles.fewFiles {
      var wanted = missing
      var found: [ManifestFile] = []
      for file in files {
        guard let index = wanted.firstIndex(of: file.sha256) else { continue }
        found.append(file)
        wanted.swapAt(index, wanted.count - 1)
        wanted.removeLast()
        if wanted.isEmpty { break }
      }
      newFiles = found
    }
    var similar = SimilarFiles(head: [])
    if store.storesDeltas, let head = try await store.app(app).environment(environment).head {
      // A few new files need only their folders of the head; many, the whole head, read once.
      if let newFiles {
        similar = SimilarFiles(
          head: try await store.files(
            app: app, number: head, inFolders: Set(newFiles.map { EntryPath.folder(of: $0.path) })))
      } else {
        similar = SimilarFiles(head: try await store.files(app: app, number: head))
      }
    }
    // In the files' order, each content once, and `blobsAtOnce` at a time: a large push holds no
    // list of every new file with its path on disk.
    var blobs: [BlobFile] = []
    blobs.reserveCapacity(min(missing.count, Self.blobsAtOnce))
    func add(_ file: ManifestFile) async throws {
      var blob = source(file)
      if store.storesDeltas { blob.similar = similar.blob(resembling: file) }
      blobs.append(blob)
      if blobs.count == Self.blobsAtOnce {
        try await store.storeBlobs(blobs)
        blobs.removeAll(keepingCapacity: true)
      }
    }
    if let newFiles {
      for file in newFiles { try await add(file) }
    } else {
      // Each content once, from the first file that has it.
      var added = [Bool](repeating: false, count: missing.count)
      for file in files {
        let index = missing.partitionPoint { $0 < file.sha256 }
        guard index < missing.count, missing[index] == file.sha256, !added[index] else { continue }
        added[index] = true
        try await add(file)
      }
    }
    if !blobs.isEmpty { try await store.storeBlobs(blobs) }
  }

  /// Up to how many files a push writes its stat cache and makes its tree's digest and folders side
  /// by side (see `push`).
  static let sideBySideFiles = 50_000

  /// How many new files' contents are handed to the store at once: as many as a transaction of the
  /// SQLite store takes at most (PostgreSQL's take up to 32 MiB, so a push of many small files now
  /// commits once per this many).
  static let blobsAtOnce = 4096

  // MARK: Import

  /// What `import` read, and what it did.
  public struct ImportResult: Sendable {
    public enum Outcome: Sendable {
      case imported(Change)
      /// A dry run: what importing would change against the head (nil when there is none); nothing was written.
      case dryRun(changes: [FileChange], head: Version?)
    }

    /// What the archive held, as read and checked.
    public var fileCount: Int
    public var totalSize: Int64
    public var treeDigest: TreeDigest
    public var archiveSHA256: SHA256Hex
    public var outcome: Outcome

    public init(
      fileCount: Int, totalSize: Int64, treeDigest: TreeDigest, archiveSHA256: SHA256Hex, outcome: Outcome
    ) {
      self.fileCount = fileCount
      self.totalSize = totalSize
      self.treeDigest = treeDigest
      self.archiveSHA256 = archiveSHA256
      self.outcome = outcome
    }

    init(contents: ArchiveContents, outcome: Outcome) {
      self.init(
        fileCount: contents.files.count, totalSize: contents.totalSize, treeDigest: contents.treeDigest,
        archiveSHA256: contents.archiveSHA256, outcome: outcome)
    }
  }

  /// Reads and checks a whole archive; only then adds it as a new version of `environment`.
  ///
  /// The archive is read into a staging folder with no lock held, so a slow upload stops no other
  /// writer; then the blobs the store lacks are stored, and one short change adds the version. A
  /// refused archive changes nothing in the store.
  ///
  /// - Throws: `ArchiveRefusal` for a bad archive, or one of another app unless `allowOtherApp`.
  public func importArchive(
    _ source: ArchiveSource, app: String, environment: String, comment: String?, author: String,
    reader: ArchiveReader, allowOtherApp: Bool, dryRun: Bool, expectedHead: ExpectedHead? = nil,
    approval: Approval? = nil, logger: Logger
  ) async throws -> ImportResult {
    try checkText(comment, author)
    _ = try await store.app(app).environment(environment)
    if dryRun {
      let (contents, preview) = try await previewImport(
        source, app: app, environment: environment, reader: reader, allowOtherApp: allowOtherApp, logger: logger)
      var head: Version?
      if let number = preview.head { head = try await store.version(app: app, number: number) }
      return ImportResult(contents: contents, outcome: .dryRun(changes: preview.changes, head: head))
    }
    let read: (fileCount: Int, totalSize: Int64, treeDigest: TreeDigest, archiveSHA256: SHA256Hex)
    let decided: Decided
    // The archive's files, the staged contents (and where each is in the spool) and the version's
    // tree are let go at the end of this scope: the list of changes, made after it, is the peak of a
    // large first import.
    do {
      let staging = try StagingArea(in: store.stagingFolder)
      defer { staging.remove() }
      let contents = try await offload { try reader.read(from: source, into: try staging.sink()) }
      FreedMemory.giveBack()
      logger.debug("archive read", metadata: ["files": "\(contents.files.count)", "source": "\(source.displayName)"])
      try checkApp(contents, app: app, allowOtherApp: allowOtherApp)
      let manifest = contents.manifest
      let origin = ImportOrigin(
        archiveSHA256: contents.archiveSHA256, app: manifest?.app, environment: manifest?.environment,
        version: manifest?.version?.number)
      let described = manifest?.version.map {
        "v\($0.number) of \(manifest?.app ?? "?")/\(manifest?.environment ?? "?")"
      }
      let tree = contents.treeDigest
      read = (contents.files.count, contents.totalSize, tree, contents.archiveSHA256)
      if let head = try await decisionHead(app: app, environment: environment, tree: tree, expectedHead).unchanged {
        return ImportResult(contents: contents, outcome: .imported(.unchanged(head: head)))
      }
      var expectedHead = expectedHead
      if let approval {
        let preview = try await approvalPreview(
          app: app, environment: environment, files: contents.files, content: { staging.blob($0.sha256) },
          logger: logger)
        if let expectedHead, expectedHead != preview.expectedHead {
          _ = try await decisionHead(app: app, environment: environment, tree: tree, expectedHead)
        }
        if try await approval(preview) { expectedHead = preview.expectedHead }
      }
      let versionTree = VersionTree(files: contents.files, digest: contents.treeDigest)
      try await storeMissing(versionTree, app: app, environment: environment) { staging.blob($0.sha256) }
      decided = try await deciding(expectedHead: expectedHead, logger: logger) { () async throws -> Decided in
        let (headNumber, unchanged) = try await decisionHead(
          app: app, environment: environment, tree: tree, expectedHead)
        if let unchanged { return .unchanged(unchanged) }
        let version = try await store.apply(
          StoreChange(
            .addVersion(
              VersionDraft(
                app: app, environment: environment,
                comment: comment ?? "import of \(source.displayName)" + (described.map { " (\($0))" } ?? ""),
                origin: .import, importedFrom: origin, tree: versionTree),
              expectedHead: headNumber),
            author: author, at: clock(),
            detail: "imported \(source.displayName)\(manifest == nil ? " (plain tar)" : "")",
            archiveSHA256: contents.archiveSHA256))
        return .created(version!)
      }
    }
    return ImportResult(
      fileCount: read.fileCount, totalSize: read.totalSize, treeDigest: read.treeDigest,
      archiveSHA256: read.archiveSHA256, outcome: .imported(try await change(decided)))
  }

  func checkApp(_ contents: ArchiveContents, app: String, allowOtherApp: Bool) throws {
    guard let other = contents.manifest?.app, other != app, !allowOtherApp else { return }
    throw ArchiveRefusal(
      entry: Manifest.entryName, rule: .otherApp, detail: "the archive is of app '\(other)', not '\(app)'",
      hint: .allowOtherApp)
  }

  // MARK: Restore and sync

  /// Makes a new version of `environment` with the tree of version `number`.
  public func restore(
    app: String, number: Int, environment: String, comment: String?, author: String,
    expectedHead: ExpectedHead? = nil, logger: Logger
  ) async throws -> Change {
    try checkText(comment, author)
    let source = try await store.version(app: app, number: number)
    let decided: Decided
    // The version's files and tree are let go before its list of changes is made, as in `push`.
    do {
      let files = try await store.files(app: app, number: number)
      // Made once, off Swift's own threads, whatever retries the decision takes.
      let tree = try await offload { VersionTree(files: files) }
      decided = try await deciding(expectedHead: expectedHead, logger: logger) {
        let (headNumber, unchanged) = try await decisionHead(
          app: app, environment: environment, tree: source.treeDigest, expectedHead)
        if let unchanged { return .unchanged(unchanged) }
        let version = try await store.apply(
          StoreChange(
            .addVersion(
              VersionDraft(
                app: app, environment: environment, comment: comment ?? "restore of version \(number)",
                origin: .restore, restoredFrom: number, tree: tree),
              expectedHead: headNumber),
            author: author, at: clock(), detail: "restored version \(number)"))
        return .created(version!)
      }
    }
    return try await change(decided)
  }

  /// What `sync` did.
  public struct SyncResult: Sendable, Codable {
    public var version: Version
    public var environment: String
    /// The head it replaced (now pinned as a backup), if it was another version.
    @ExplicitNull public var replaced: Int?
    /// Whether the version was the environment's head already.
    public var wasHead: Bool

    public init(version: Version, environment: String, replaced: Int?, wasHead: Bool) {
      self.version = version
      self.environment = environment
      self.replaced = replaced
      self.wasHead = wasHead
    }
  }

  /// Puts version `number` into production (or `environment`): head moved, synced-at set, pinned.
  public func sync(
    app: String, number: Int, environment: String?, author: String, expectedHead: ExpectedHead? = nil,
    logger: Logger
  ) async throws -> SyncResult {
    try checkText(author)
    return try await deciding(expectedHead: expectedHead, logger: logger) {
      let info = try await store.app(app)
      guard let target = try environment.map({ try info.environment($0) }) ?? info.production else {
        throw OperationError(
          .operationFailed, "app '\(app)' has no production environment", hint: .nameTargetOrCreateProduction)
      }
      _ = try await store.version(app: app, number: number)
      let headNumber = decisionHead(expectedHead, current: target.head)
      let replaced = headNumber == number ? nil : headNumber
      let version = try await store.apply(
        StoreChange(
          .sync(app: app, environment: target.name, number: number, expectedHead: headNumber), author: author,
          at: clock(),
          detail: "version \(number) synced to \(target.name)"
            + (replaced.map { "; replaced head \($0), pinned" } ?? "")
        ))
      return SyncResult(version: version!, environment: target.name, replaced: replaced, wasHead: headNumber == number)
    }
  }
}

/// For a new file, the content it most likely resembles, which a compact store may keep it as a
/// delta against: in the head, the file at the same path, else the file of the same name elsewhere
/// (another service's `deployment.yaml`), else one of the same folder and extension, each time the
/// nearest in size; with none, the first new file of the same name, stored whole before it.
struct SimilarFiles {
  /// Up to this many new files, only the head's files beside them are compared.
  static let fewFiles = 64
  private var byPath: [String: SHA256Hex] = [:]
  private var byName: [Substring: [(size: Int64, blob: SHA256Hex)]] = [:]
  private var byKind: [String: [(size: Int64, blob: SHA256Hex)]] = [:]
  /// The first new file of each name that resembles nothing in the head, by the name's hash: a
  /// push of 100,000 files of distinct names holds no copy of them (two names of one hash only make
  /// a poorer guess, which the store may reject).
  private var leaders: [Int: SHA256Hex] = [:]
  /// At most this many names lead (under 1 MiB); a name first seen after them is stored whole, as
  /// its followers are. A first push or import of 100,000 files of distinct names held 10 MiB of
  /// leaders that nothing followed, and 16 MiB while the dictionary grew: the peak of both.
  static let mostLeaders = 16_384

  init(head: [ManifestFile]) {
    for file in head {
      byPath[file.path] = file.sha256
      byName[EntryPath.name(of: file.path), default: []].append((file.size, file.sha256))
      byKind[SimilarFiles.kind(file.path), default: []].append((file.size, file.sha256))
    }
    for name in byName.keys { byName[name]!.sort { $0.size < $1.size } }
    for kind in byKind.keys { byKind[kind]!.sort { $0.size < $1.size } }
  }

  /// The blob `file` most likely resembles; asked in the order the new files are stored.
  mutating func blob(resembling file: ManifestFile) -> SHA256Hex? {
    if let same = byPath[file.path] { return same }
    let name = EntryPath.name(of: file.path)
    if let found = SimilarFiles.nearest(byName[name], file.size)
      ?? SimilarFiles.nearest(
        byKind[SimilarFiles.kind(file.path)], file.size)
    {
      return found
    }
    guard let leader = leaders[name.hashValue] else {
      if leaders.count < SimilarFiles.mostLeaders { leaders[name.hashValue] = file.sha256 }
      return nil
    }
    return leader
  }

  /// Of `files` sorted by size, the blob of the one nearest to `size`.
  private static func nearest(_ files: [(size: Int64, blob: SHA256Hex)]?, _ size: Int64) -> SHA256Hex? {
    guard let files, !files.isEmpty else { return nil }
    // The first file at least as large, or the one before it, whichever is nearer.
    let low = files.partitionPoint { $0.size < size }
    let candidates = [low - 1, low].filter { files.indices.contains($0) }
    return candidates.min { abs(files[$0].size - size) < abs(files[$1].size - size) }.map { files[$0].blob }
  }

  /// The folder and the extension of `path`: "deploy/api/" and "yaml" as "deploy/api/\0yaml".
  private static func kind(_ path: String) -> String {
    let name = EntryPath.name(of: path)
    let folder = path.dropLast(name.count)
    let fileExtension = name.lastIndex(of: ".").map { name[name.index(after: $0)...] } ?? ""
    return folder + "\0" + fileExtension
  }
}
