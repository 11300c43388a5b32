import Foundation
import Logging
import Synchronization

extension Vault {
  /// What a change would do to an environment, and the head it was decided against: shown before
  /// asking, then named when the change is made, so that a head that moved meanwhile is a conflict.
  public struct Preview: Sendable, Codable {
    public var app: String
    public var environment: String
    /// The environment's head now; nil when it has none.
    @ExplicitNull public var head: Int?
    public var changes: [FileChange]
    /// What changed inside each changed file: key paths, text hunks or sizes.
    public var files: [FileDiff]

    /// The head to name when making the change.
    public var expectedHead: ExpectedHead { head.map(ExpectedHead.version) ?? .none }
  }

  /// What restoring version `number` into `environment` would change.
  public func previewRestore(app: String, number: Int, environment: String, logger: Logger) async throws -> Preview {
    _ = try await store.version(app: app, number: number)
    let head = try await store.app(app).environment(environment).head
    let changes = try await store.changedFiles(app: app, from: head, to: number)
    return Preview(
      app: app, environment: environment, head: head, changes: changes,
      files: try await describe(changes, logger: logger))
  }

  /// What syncing version `number` to `environment` (default: production) would change.
  ///
  /// - Throws: `.operationFailed` when no environment is named and the app has no production one.
  public func previewSync(app: String, number: Int, environment: String?, logger: Logger) async throws -> Preview {
    let info = try await store.app(app)
    guard let target = try environment.map({ try info.environment($0) }) ?? info.production else {
      throw OperationError(
        .operationFailed, "app '\(app)' has no production environment", hint: .nameTargetOrCreateProduction)
    }
    _ = try await store.version(app: app, number: number)
    let changes = try await store.changedFiles(app: app, from: target.head, to: number)
    return Preview(
      app: app, environment: target.name, head: target.head, changes: changes,
      files: try await describe(changes, logger: logger))
  }

  /// What a push of a folder would do, what the ignore rules left out, and what it was checked out from.
  public struct FolderStatus: Sendable {
    public var preview: Preview
    /// What the ignore rules left out (see `FolderScan.ignored`).
    public var ignored: [String]
    /// The folder's checkout record, whichever environment or store it names.
    public var checkout: CheckoutRecord?
    /// Set when the record names this environment of this store and its head has moved past it.
    public var behindHead: FolderBehindHead?
  }

  /// What pushing `folder` to `environment` would change, what it leaves out, and whether the
  /// environment's head has moved past the version the folder was checked out from; nothing is written.
  ///
  /// - Parameters:
  ///   - storeName: how the front end names this store in checkout records; nil passes the record over.
  ///   - statCache: the file of the folder's stat cache (`StatCache`); nil reads every file.
  ///   - startedScan: the folder's scan, begun already: its own limits, rules and stat cache are
  ///     used, not `limits`, `applyingIgnoreRules` and `statCache`. Nil scans the folder with those
  ///     once the app and environment are found.
  public func folderStatus(
    app: String, environment: String, folder: String, limits: ArchiveLimits = .default,
    applyingIgnoreRules: Bool = true, storeName: String?, statCache: String? = nil, startedScan: StartedScan? = nil,
    logger: Logger
  ) async throws -> FolderStatus {
    _ = try await store.app(app).environment(environment)
    let scanned = try await Self.scanned(
      folder, started: startedScan, limits: limits, applyingIgnoreRules: applyingIgnoreRules, statCache: statCache,
      logger: logger)
    await save(scanned.cache, logger: logger)
    // The same preview a push shows before it asks, each file's new bytes read from the folder.
    let preview = try await approvalPreview(
      app: app, environment: environment, files: scanned.files,
      content: { BlobFile(sha256: $0.sha256, size: $0.size, path: scanned.paths[$0.path]!) }, logger: logger)
    let record = CheckoutRecord.read(from: folder, logger: logger)
    var behind: FolderBehindHead?
    // No change means the folder holds the head's tree: nothing a stale checkout could undo.
    if let record, let storeName, record.names(app: app, environment: environment, store: storeName),
      !preview.changes.isEmpty
    {
      behind = try await behindHead(folder: folder, record: record, head: preview.head)
    }
    return FolderStatus(preview: preview, ignored: scanned.ignored, checkout: record, behindHead: behind)
  }

  /// A configuration folder's files, hashed, with where each is on disk, what was left out, and its
  /// stat cache as it now is, for the caller to `save`.
  typealias ScannedFolder = (files: [ManifestFile], paths: ScannedPaths, ignored: [String], cache: StatCache?)

  /// A scan of a folder (`scanFolder`) begun before the store is opened, so that walking the folder
  /// and opening the store overlap: opening it took 7 of a one-file push's 75 ms (20,000 files).
  /// The scan only reads; `push` and `folderStatus` take it in place of scanning the folder
  /// themselves, once they have found the app and environment, and take it once.
  public struct StartedScan: Sendable {
    let folder: String
    private let task: Task<Outcome, Never>

    /// What the scan found or the error it met, handed over once: a task keeps its value as long as
    /// it is referenced, and a 100,000-file push held its files and stat cache to the end (10 MiB
    /// more at its peak) when the task's value was the scan itself.
    private final class Outcome: Sendable {
      private let result: Mutex<Result<ScannedFolder, any Error>?>

      init(_ result: Result<ScannedFolder, any Error>) { self.result = Mutex(result) }

      func take() throws -> ScannedFolder {
        let result = self.result.withLock { result in
          defer { result = nil }
          return result
        }
        guard let result else { preconditionFailure("a started scan taken twice") }
        return try result.get()
      }
    }

    /// Begins scanning `folder` as `push` and `folderStatus` would with the same arguments.
    public init(
      folder: String, limits: ArchiveLimits = .default, applyingIgnoreRules: Bool = true, statCache: String?,
      logger: Logger
    ) {
      self.folder = folder
      task = Task {
        do {
          return Outcome(
            .success(
              try await Vault.scanFolder(
                folder, limits: limits, applyingIgnoreRules: applyingIgnoreRules, statCache: statCache,
                logger: logger)))
        } catch {
          return Outcome(.failure(error))
        }
      }
    }

    /// What the scan found, once it is done.
    func take() async throws -> ScannedFolder { try await task.value.take() }
  }

  /// The scan `started` if there is one (its own limits, rules and stat cache), else a scan of
  /// `folder` made now with these.
  static func scanned(
    _ folder: String, started: StartedScan?, limits: ArchiveLimits, applyingIgnoreRules: Bool, statCache: String?,
    logger: Logger
  ) async throws -> ScannedFolder {
    guard let started else {
      return try await scanFolder(
        folder, limits: limits, applyingIgnoreRules: applyingIgnoreRules, statCache: statCache, logger: logger)
    }
    precondition(started.folder == folder, "a scan of `\(started.folder)` given for `\(folder)`")
    return try await started.take()
  }

  /// The files of a configuration folder, hashed, with where each is on disk, and what was left out.
  ///
  /// - Parameter statCache: the file of the folder's stat cache: only files whose status changed
  ///   since are read; the cache as it now is comes back, for the caller to `save`.
  static func scanFolder(
    _ folder: String, limits: ArchiveLimits, applyingIgnoreRules: Bool, statCache: String?, logger: Logger
  ) async throws -> ScannedFolder {
    // The stat cache is read on a thread of its own while the folder is walked: read after the
    // walk, it took 6 to 8 ms of a one-file push of 20,000 files (about 110 ms).
    async let cached = offload {
      statCache.flatMap { StatCache.canTrust(folder: folder) ? StatCache(path: $0) : nil }
    }
    let found = try await offload {
      let rules = applyingIgnoreRules ? try IgnoreRules.forFolder(folder) : .none
      return try ConfigurationFolder.scan(folder, limits: limits, ignoring: rules)
    }
    // Where the files are is listed on another thread while they are hashed (2 ms of a one-file
    // push of 20,000 files), up to `sideBySideFiles` files (see `push`).
    let sideBySide = found.files.count <= Self.sideBySideFiles
    async let pathsBeside = sideBySide ? offload { ScannedPaths(found.files) } : nil
    let hashed: (files: [ManifestFile], cache: StatCache?)
    if let statCache, let cache = try await cached {
      (hashed.files, hashed.cache) = try await offload {
        var cache = cache
        let hashed = try ConfigurationArchive.hash(found.files, cache: &cache)
        logger.debug(
          "folder read through the stat cache",
          metadata: ["files": "\(hashed.files.count)", "read": "\(hashed.read)", "cache": "\(statCache)"])
        return (hashed.files, cache)
      }
    } else {
      hashed = (try await offload { try ConfigurationArchive.hash(found.files) }, nil)
    }
    let paths = try await pathsBeside ?? ScannedPaths(found.files)
    return (hashed.files, paths, found.ignored, hashed.cache)
  }

  /// Writes a stat cache a scan read through; one that cannot be written is passed over (the next
  /// scan reads every file).
  func save(_ cache: StatCache?, logger: Logger) async {
    guard let cache else { return }
    do {
      try await offload { try cache.save() }
    } catch {
      logger.debug("stat cache not written", metadata: ["cache": "\(cache.path)", "error": "\(error)"])
    }
  }

  /// Where each file of a scan is on disk, by its path in the configuration.
  struct ScannedPaths: Sendable {
    /// In path byte order, as a scan lists them: found by halves, with no dictionary of every path
    /// (and no file's status, which the scan's list holds). A path on disk is made when asked for:
    /// most files of a push are stored already.
    private let paths: [String]
    /// The folder the files are in, each at its path: all of them but those `elsewhere` holds.
    private let folder: String
    /// Where the files are that are not at their path in `folder` (a name NFC changed), by index:
    /// no place kept for every file (100,000 files: 4 MB).
    private let elsewhere: [Int: FolderFile.Location]

    init(_ files: [FolderFile]) {
      paths = files.map(\.path)
      var folder: String?
      var elsewhere: [Int: FolderFile.Location] = [:]
      for index in files.indices {
        if case .below(let below, let relative) = files[index].location, below == folder ?? below,
          EntryPath.sameBytes(relative, files[index].path)
        {
          folder = below
        } else {
          elsewhere[index] = files[index].location
        }
      }
      (self.folder, self.elsewhere) = (folder ?? "", elsewhere)
    }

    subscript(path: String) -> String? {
      let low = paths.partitionPoint { EntryPath.byteOrder($0, path) }
      guard low < paths.count && paths[low] == path else { return nil }
      return elsewhere[low]?.absolutePath ?? joinedPath(folder, path.utf8)
    }
  }

  /// Whether the head of the environment `record` names has moved past the version it records: to
  /// another version with another tree (a head that moved to the same tree undoes nothing).
  func behindHead(folder: String, record: CheckoutRecord, head: Int?) async throws -> FolderBehindHead? {
    guard head != record.version else { return nil }
    guard let head else { return FolderBehindHead(folder: folder, record: record, head: nil) }
    let version = try await store.version(app: record.app, number: head)
    guard version.treeDigest != record.treeDigest else { return nil }
    return FolderBehindHead(folder: folder, record: record, head: version)
  }

  /// Reads and checks a whole archive and says what importing it into `environment` would change;
  /// nothing is written.
  ///
  /// - Throws: `ArchiveRefusal` for a bad archive, or one of another app unless `allowOtherApp`.
  public func previewImport(
    _ source: ArchiveSource, app: String, environment: String, reader: ArchiveReader, allowOtherApp: Bool,
    logger: Logger
  ) async throws -> (contents: ArchiveContents, preview: Preview) {
    _ = try await store.app(app).environment(environment)
    let contents = try await offload { try reader.read(from: source) }
    try checkApp(contents, app: app, allowOtherApp: allowOtherApp)
    let head = try await store.app(app).environment(environment).head
    var old: [ManifestFile] = []
    if let head { old = try await store.files(app: app, number: head) }
    let changes = FileChange.between(old: old, new: contents.files)
    // The new content of the files that changed, read from the archive a second time (it is a local
    // file by now), to show their key paths; each no larger than a diff compares.
    // Bounded in all: past 32 MiB, files are shown by size only.
    var budget: Int64 = 32 << 20
    let wanted = Set(
      changes.filter { change in
        guard change.kind == .modified, let size = change.new?.size, size <= ContentDiff.largestCompared,
          size <= budget
        else { return false }
        budget -= size
        return true
      }.map(\.path))
    let captured = try await offload {
      let capture = CapturingSink(paths: wanted)
      _ = try reader.read(from: source, into: capture)
      return capture.captured
    }
    var files: [FileDiff] = []
    for change in changes {
      if let new = captured[change.path], let old = change.old, old.size <= ContentDiff.largestCompared {
        var before = Data()
        try await store.readBlob(old.sha256) { before.append(contentsOf: $0) }
        files.append(ContentDiff.diff(change, before, new))
      } else {
        files.append(FileDiff(change: change, detail: .sizes(old: change.old?.size, new: change.new?.size)))
      }
    }
    return (contents, Preview(app: app, environment: environment, head: head, changes: changes, files: files))
  }
}

/// Keeps the bytes of the named files of an archive as it streams.
private final class CapturingSink: ArchiveFileSink, @unchecked Sendable {
  let paths: Set<String>
  private(set) var captured: [String: Data] = [:]
  private var current: String?

  init(paths: Set<String>) { self.paths = paths }

  func beginFile(path: String, mode: FileMode) throws {
    current = paths.contains(path) ? path : nil
    if let current { captured[current] = Data() }
  }

  func write(_ bytes: UnsafeRawBufferPointer) throws {
    if let current { captured[current]!.append(contentsOf: bytes) }
  }

  func endFile(_ file: ManifestFile) throws {
    current = nil
  }
}

/// A checked-out folder whose environment's head has moved past the version it was checked out from
/// (a restore, another push): pushing it would undo what changed since.
public struct FolderBehindHead: ConfvaultError, Sendable {
  public var folder: String
  public var record: CheckoutRecord
  /// The head now; nil when the environment has none.
  public var head: Version?

  public var kind: FailureKind { .conflict }

  /// What happened, without what was done about it.
  public var situation: String {
    let now =
      head.map { "v\($0.number) (\($0.origin.rawValue) by \($0.author)\($0.comment.isEmpty ? "" : ": " + $0.comment))" }
      ?? "no version"
    return
      "`\(folder)` was checked out from v\(record.version) of \(record.app)/\(record.environment), but the environment's head has moved on to \(now)"
  }

  public var description: String {
    "\(situation); pushing the folder would undo what changed since v\(record.version), so nothing was changed"
  }
}
