import Foundation
import Logging

/// Copies every app of one store into another, empty store, with its history as it is: every
/// environment (production, head, created-at), every version (number, author, date, comment, origin,
/// parent, pin, synced-at, tree) and every audit entry (id, time, author, words).
///
/// It works through the store protocol alone, so it copies between any two kinds of store (SQLite to
/// PostgreSQL and back). The content the target lacks is streamed from the source a chunk at a time
/// through a staging file of the target's, never held in memory whole. Each app, batch of versions and
/// batch of audit entries is one change of the target; a copy that fails part way leaves a target that is not
/// empty, so it is made again into a new, empty store. The source should not change meanwhile: a
/// version or an audit entry added while the copy runs may or may not be copied.
public struct StoreCopy: Sendable {
  public let source: any VersionStore
  public let target: any VersionStore
  private let clock: @Sendable () -> Date

  /// How many versions are read from the source at a time.
  static let versionsPerPage = 200
  /// At most how many versions, and about how many of their files, go to the target in one change.
  static let versionsPerChange = 100
  static let filesPerChange = 50_000
  /// How many audit entries go to the target in one change.
  static let auditEntriesPerChange = 1000
  /// Content is staged and stored in batches of about this many bytes.
  static let bytesPerBatch: Int64 = 32 << 20

  public init(
    from source: any VersionStore, to target: any VersionStore, clock: @escaping @Sendable () -> Date = Timestamp.now
  ) {
    self.source = source
    self.target = target
    self.clock = clock
  }

  /// What was copied: of the whole store, or of one app.
  public struct Summary: Sendable, Codable, Equatable {
    public var apps: Int = 0
    public var environments: Int = 0
    public var versions: Int = 0
    public var auditEntries: Int = 0
    /// Contents stored in the target, and their bytes (contents the versions share are stored once).
    public var blobs: Int = 0
    public var bytes: Int64 = 0

    public init() {}

    mutating func add(_ other: Summary) {
      apps += other.apps
      environments += other.environments
      versions += other.versions
      auditEntries += other.auditEntries
      blobs += other.blobs
      bytes += other.bytes
    }
  }

  /// Copies the source's apps into the target.
  ///
  /// - Parameter copied: called after each app with its name and what was copied of it.
  /// - Throws: `.cannotCreateOutput` when the target holds an app or an audit entry already (nothing
  ///   is changed then); `.badInput` when a version's files do not give its tree digest; what the
  ///   stores throw.
  @discardableResult
  public func run(logger: Logger, copied: @Sendable (String, Summary) -> Void = { _, _ in }) async throws -> Summary {
    try await refuseNonEmptyTarget()
    let apps = try await source.apps()
    let staging = try StagingArea(in: target.stagingFolder)
    defer { staging.remove() }
    var total = Summary()
    for app in apps {
      let summary = try await copy(app, staging: staging, logger: logger)
      total.add(summary)
      copied(app.name, summary)
    }
    // A last look: the target has the apps, environments and heads the source had when the copy began.
    let copiedApps = try await target.apps()
    guard copiedApps == apps else {
      throw OperationError(
        .internal,
        "the target's apps and environments differ from the source's after the copy: "
          + "\(copiedApps.map(\.name)) against \(apps.map(\.name))")
    }
    return total
  }

  private func refuseNonEmptyTarget() async throws {
    let apps = try await target.apps()
    let audit = try await target.audit(app: nil, limit: 1)
    guard apps.isEmpty && audit.isEmpty else {
      let names = apps.map { "'\($0.name)'" }.joined(separator: ", ")
      throw OperationError(
        .cannotCreateOutput,
        "the target store is not empty (it holds \(apps.isEmpty ? "audit entries" : "the apps \(names)")); "
          + "a store is copied only into an empty one, so that its version numbers and audit log stay as "
          + "they are; nothing was changed")
    }
  }

  private func copy(_ app: AppInfo, staging: StagingArea, logger: Logger) async throws -> Summary {
    var summary = Summary()
    summary.apps = 1
    let meter = ProgressMeter.current
    meter?.begin("copying \(app.name)")
    try await target.apply(change(.copyApp(name: app.name, createdAt: app.createdAt)))
    // Oldest first, a page at a time, so that a version's parent is in the target before it (a store
    // may keep a folder as a change to the parent's). The protocol lists pages newest first, below a
    // number: the page below `start + versionsPerPage`, from `start` on, is the next one up. A batch
    // of versions is written in one change, after the contents they lack.
    let newest = try await source.versions(app: app.name, environment: nil, before: nil, limit: 1).first?.number ?? 0
    var batch: [VersionCopy] = []
    var batchFiles = 0
    func flush() async throws {
      guard !batch.isEmpty else { return }
      let stored = try await copyBlobs(batch.flatMap(\.files), staging: staging)
      try await target.apply(change(.copyVersions(app: app.name, batch)))
      summary.versions += batch.count
      summary.blobs += stored.blobs
      summary.bytes += stored.bytes
      meter?.add(files: batch.count, bytes: stored.bytes)
      batch.removeAll()
      batchFiles = 0
    }
    var start = 1
    while start <= newest {
      let end = start + Self.versionsPerPage
      let page = try await source.versions(app: app.name, environment: nil, before: end, limit: Self.versionsPerPage)
      for version in page.reversed() where version.number >= start {
        let files = try await source.files(app: app.name, number: version.number)
        batch.append(VersionCopy(version, files: files))
        batchFiles += files.count
        if batch.count >= Self.versionsPerChange || batchFiles >= Self.filesPerChange { try await flush() }
      }
      start = end
    }
    try await flush()
    for environment in app.environments {
      try await target.apply(change(.copyEnvironment(app: app.name, environment)))
      summary.environments += 1
    }
    let entries = try await source.audit(app: app.name, limit: Int.max)
    for first in stride(from: 0, to: entries.count, by: Self.auditEntriesPerChange) {
      let batch = Array(entries[first..<min(first + Self.auditEntriesPerChange, entries.count)])
      try await target.apply(change(.copyAudit(app: app.name, entries: batch)))
    }
    summary.auditEntries = entries.count
    logger.debug(
      "app copied",
      metadata: [
        "app": "\(app.name)", "versions": "\(summary.versions)", "auditEntries": "\(summary.auditEntries)",
        "blobs": "\(summary.blobs)",
      ])
    return summary
  }

  /// A change of the copy: its author, time and words are not recorded (it adds no audit entry).
  private func change(_ operation: StoreChange.Operation) -> StoreChange {
    StoreChange(operation, author: "confvault store copy", at: clock(), detail: "store copy")
  }

  /// Stores in the target the content of `files` it lacks, streamed from the source through a staging
  /// file a batch at a time; returns how many contents and bytes were stored.
  private func copyBlobs(_ files: [ManifestFile], staging: StagingArea) async throws -> (blobs: Int, bytes: Int64) {
    let missing = try await target.missingBlobs(files.map(\.sha256))
    guard !missing.isEmpty else { return (0, 0) }
    var wanted: [SHA256Hex: Int64] = [:]
    for file in files where missing.contains(file.sha256) { wanted[file.sha256] = file.size }
    let spool = staging.spool
    var batch: [BlobFile] = []
    var offset: Int64 = 0
    var stored = (blobs: 0, bytes: Int64(0))
    var fd = try openSpool(spool)
    defer { close(fd) }
    let blobs = wanted.sorted(by: { $0.key < $1.key }).map { (sha256: $0.key, size: $0.value) }
    try await source.forEachBlob(blobs) { index, blob in
      let (digest, size) = blobs[index]
      let sink = FileDescriptorSink(fd: fd, name: spool)
      var hasher = SHA256Stream()
      var read: Int64 = 0
      try await blob.read { chunk in
        hasher.update(chunk)
        read += Int64(chunk.count)
        try sink.write(chunk)
      }
      guard read == size, hasher.finalize() == digest else {
        throw OperationError(
          .internal, "the source store's content \(digest) is damaged: it does not read back as stored",
          hint: .runCheck)
      }
      batch.append(BlobFile(sha256: digest, size: size, path: spool, offset: offset))
      offset += size
      if offset >= Self.bytesPerBatch {
        try await target.storeBlobs(batch)
        stored = (stored.blobs + batch.count, stored.bytes + offset)
        close(fd)
        fd = try openSpool(spool)
        batch.removeAll()
        offset = 0
      }
    }
    if !batch.isEmpty {
      try await target.storeBlobs(batch)
      stored = (stored.blobs + batch.count, stored.bytes + offset)
    }
    return stored
  }

  /// Opens the staging file empty, to write a batch of contents into.
  private func openSpool(_ path: String) throws -> Int32 {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw SystemError(.create, path) }
    return fd
  }
}

/// A version as a store copy writes it: every field as the source store has it, and its files.
public struct VersionCopy: Sendable {
  public var version: Version
  public var files: [ManifestFile]

  public init(_ version: Version, files: [ManifestFile]) {
    self.version = version
    self.files = files
  }

  /// Checks that the version is of `app` and that its files make its tree, before a store writes it;
  /// returns that tree.
  ///
  /// - Throws: `.badInput` when the files' tree digest, count or size is not the version's.
  public func check(app: String) throws -> VersionTree {
    guard version.app == app else {
      throw OperationError(.internal, "version \(version.number) of app '\(version.app)' is copied as one of '\(app)'")
    }
    let tree = VersionTree(files: files)
    let digest = tree.digest
    let size = files.reduce(Int64(0)) { $0 + $1.size }
    guard digest == version.treeDigest, files.count == version.fileCount, size == version.totalSize else {
      throw OperationError(
        .badInput,
        "version \(version.number) of app '\(app)' to copy: its \(files.count) files (\(size) bytes) give the "
          + "tree digest \(digest), not \(version.treeDigest) (\(version.fileCount) files, \(version.totalSize) "
          + "bytes) as the version says; nothing was changed")
    }
    return tree
  }
}
