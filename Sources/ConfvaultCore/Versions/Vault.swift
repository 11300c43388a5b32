import Foundation
import Logging

/// Everything a user can do with versions, over any `VersionStore`: the one place the CLI, a server
/// and a remote client call.
///
/// A change is decided on what the store shows (the head, the tree), prepared outside any lock
/// (archives read, blobs stored), then made by one short `apply` that names the head it was decided
/// on. When the caller names no head of its own, a head that moved meanwhile makes the change be
/// decided again, a bounded number of times; a head the caller named (from a preview) that moved is
/// a `.conflict`. Every change records who made it in the audit log, and reads the clock once.
public struct Vault: Sendable {
  public let store: any VersionStore
  /// Now; read once per change.
  public let clock: @Sendable () -> Date

  /// How many times a change is decided again when another writer moved the head first.
  static let attempts = 16

  public init(store: any VersionStore, clock: @escaping @Sendable () -> Date = Timestamp.now) {
    self.store = store
    self.clock = clock
  }

  /// The outcome of an operation that adds a version unless nothing changed.
  public enum Change: Sendable {
    /// A new version, and what it changed against the environment's previous head.
    case created(Version, changes: [FileChange])
    /// The tree is the head's already: no version was made.
    case unchanged(head: Version)
  }

  // MARK: Reading

  public func apps(logger: Logger) async throws -> [AppInfo] {
    try await store.apps()
  }

  public func app(_ name: String, logger: Logger) async throws -> AppInfo {
    try await store.app(name)
  }

  /// One page of the versions list.
  public struct VersionsPage: Sendable {
    /// A version with its status colour; as JSON, the version's fields and `status`.
    public struct Row: Sendable, Codable {
      public var version: Version
      public var status: SyncStatus

      enum CodingKeys: String, CodingKey { case status }

      public init(version: Version, status: SyncStatus) {
        self.version = version
        self.status = status
      }

      public init(from decoder: any Decoder) throws {
        version = try Version(from: decoder)
        status = try decoder.container(keyedBy: CodingKeys.self).decode(SyncStatus.self, forKey: .status)
      }

      public func encode(to encoder: any Encoder) throws {
        try version.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(status, forKey: .status)
      }
    }

    public init(app: AppInfo, rows: [Row], nextBefore: Int?) {
      self.app = app
      self.rows = rows
      self.nextBefore = nextBefore
    }

    public var app: AppInfo
    /// Newest first.
    public var rows: [Row]
    /// The `before` that asks for the next, older page; nil on the last page.
    public var nextBefore: Int?
  }

  /// Versions of `app` (made in `environment`, if given), newest first, numbered below `before`.
  public func versionsPage(
    app: String, environment: String?, before: Int?, limit: Int, logger: Logger
  ) async throws -> VersionsPage {
    let info = try await store.app(app)
    if let environment { _ = try info.environment(environment) }
    let versions = try await store.versions(app: app, environment: environment, before: before, limit: limit)
    let productionHead = info.production?.head
    let rows = versions.map {
      VersionsPage.Row(version: $0, status: SyncStatus(of: $0, productionHead: productionHead))
    }
    let next = rows.count == limit ? rows.last.flatMap { $0.version.number > 1 ? $0.version.number : nil } : nil
    return VersionsPage(app: info, rows: rows, nextBefore: next)
  }

  /// One version with what the versions page says of it.
  public struct VersionDetail: Sendable, Codable {
    public var version: Version
    public var status: SyncStatus
    /// The environments whose head it is.
    public var headOf: [String]

    public init(version: Version, status: SyncStatus, headOf: [String]) {
      self.version = version
      self.status = status
      self.headOf = headOf
    }
  }

  public func show(app: String, number: Int, logger: Logger) async throws -> VersionDetail {
    let info = try await store.app(app)
    let version = try await store.version(app: app, number: number)
    return VersionDetail(
      version: version, status: SyncStatus(of: version, productionHead: info.production?.head),
      headOf: info.environments.filter { $0.head == number }.map(\.name))
  }

  /// Which two trees "view changes" compares.
  public enum DiffSelection: Sendable {
    /// A version against its parent.
    case version(Int)
    /// The first version against the second.
    case versions(from: Int, to: Int)
    /// The first environment's head against the second's.
    case environments(from: String, to: String)
  }

  /// The files that differ between two versions.
  public struct Comparison: Sendable {
    /// Nil: the empty tree (a first version).
    public var from: Int?
    public var to: Int
    public var changes: [FileChange]
  }

  public func compare(app: String, _ selection: DiffSelection, logger: Logger) async throws -> Comparison {
    let from: Int?
    let to: Int
    switch selection {
    case .version(let number):
      (from, to) = (try await store.version(app: app, number: number).parent, number)
    case .versions(let first, let second):
      _ = try await store.version(app: app, number: first)
      (from, to) = (first, second)
    case .environments(let first, let second):
      let info = try await store.app(app)
      (from, to) = (try head(of: first, in: info), try head(of: second, in: info))
    }
    return Comparison(from: from, to: to, changes: try await store.changedFiles(app: app, from: from, to: to))
  }

  /// What changed inside each file: key paths, text hunks or sizes.
  ///
  /// Files are read and compared a few at a time (one per core, at most four), and come back in
  /// `changes`' order; when some cannot be, the error is the first such file's, in that order.
  ///
  /// - Parameter asText: text hunks even for JSON and YAML files that could be compared by keys.
  public func describe(_ changes: [FileChange], asText: Bool = false, logger: Logger) async throws -> [FileDiff] {
    let store = self.store
    let width = min(max(ProcessInfo.processInfo.activeProcessorCount, 1), 4, changes.count)
    var diffs = [FileDiff?](repeating: nil, count: changes.count)
    var failure: (index: Int, error: any Error)?
    try await withThrowingTaskGroup(of: (Int, Result<FileDiff, any Error>).self) { group in
      var next = 0
      while next < width {
        group.addTask { [next] in await Self.describe(changes, at: next, store: store, asText: asText) }
        next += 1
      }
      // Files start in order: once one fails, the ones before it have all started, and are waited for.
      while let (index, result) = try await group.next() {
        switch result {
        case .success(let diff): diffs[index] = diff
        case .failure(let error): if index < failure?.index ?? .max { failure = (index, error) }
        }
        if failure == nil, next < changes.count {
          group.addTask { [next] in await Self.describe(changes, at: next, store: store, asText: asText) }
          next += 1
        }
      }
    }
    if let failure { throw failure.error }
    return diffs.compactMap { $0 }
  }

  /// The diff of `changes[index]`, or why there is none, with its index.
  private static func describe(
    _ changes: [FileChange], at index: Int, store: any VersionStore, asText: Bool
  ) async -> (Int, Result<FileDiff, any Error>) {
    do {
      return (index, .success(try await ContentDiff.describe(changes[index], store: store, asText: asText)))
    } catch {
      return (index, .failure(error))
    }
  }

  private func head(of environment: String, in app: AppInfo) throws -> Int {
    guard let head = try app.environment(environment).head else {
      throw OperationError(.notFound, "environment '\(environment)' of app '\(app.name)' has no version yet")
    }
    return head
  }

  public func audit(app: String?, limit: Int, logger: Logger) async throws -> [AuditEntry] {
    if let app { _ = try await store.app(app) }
    return try await store.audit(app: app, limit: limit)
  }

  // MARK: Apps and environments

  public func createApp(
    _ name: String, environments: [String], production: String?, author: String, logger: Logger
  ) async throws {
    try await store.apply(
      StoreChange(
        .createApp(name: name, environments: environments, production: production), author: author, at: clock(),
        detail: "app created"))
    logger.info("app created", metadata: ["app": "\(name)"])
  }

  public func createEnvironment(
    app: String, name: String, production: Bool, author: String, logger: Logger
  ) async throws {
    try await store.apply(
      StoreChange(
        .createEnvironment(app: app, name: name, production: production), author: author, at: clock(),
        detail: production ? "production environment created" : "environment created"))
  }

  /// Makes `name` the app's production environment, in place of the one that was.
  ///
  /// - Returns: the environment that was production before, if any.
  @discardableResult
  public func setProduction(app: String, name: String, author: String, logger: Logger) async throws -> String? {
    let info = try await store.app(app)
    _ = try info.environment(name)
    let previous = info.production?.name
    try await store.apply(
      StoreChange(
        .setProduction(app: app, name: name), author: author, at: clock(),
        detail: "made the production environment" + (previous.map { " in place of '\($0)'" } ?? "")))
    return previous
  }

  /// Deletes an environment; its versions stay in the history.
  public func deleteEnvironment(app: String, name: String, author: String, logger: Logger) async throws {
    try await deciding(expectedHead: nil, logger: logger) {
      let environment = try await store.app(app).environment(name)
      try await store.apply(
        StoreChange(
          .deleteEnvironment(app: app, name: name, expectedHead: environment.head), author: author, at: clock(),
          detail: "environment deleted; its versions stay in the history"))
    }
  }

  // MARK: Deciding again

  /// Runs `decideAndApply` again while another writer's head move makes it fail with a conflict,
  /// unless the caller named the head it decided on (`expectedHead`): that conflict is the caller's.
  func deciding<T>(
    expectedHead: ExpectedHead?, logger: Logger, _ decideAndApply: () async throws -> T
  ) async throws -> T {
    var attempt = 1
    while true {
      do {
        return try await decideAndApply()
      } catch let error as OperationError
        where error.kind == .conflict && expectedHead == nil && attempt < Self.attempts
      {
        logger.debug("the head moved while deciding; deciding again", metadata: ["attempt": "\(attempt)"])
        attempt += 1
      }
    }
  }

  /// The head a caller decided a change on (from a preview), which the change must still find.
  public enum ExpectedHead: Sendable, Equatable {
    case none
    case version(Int)

    var number: Int? {
      if case .version(let number) = self { return number }
      return nil
    }
  }

  /// The head to decide on: the caller's, or the store's now.
  func decisionHead(_ expected: ExpectedHead?, current: Int?) -> Int? {
    expected.map(\.number) ?? current
  }

  /// Refuses a comment or author with a NUL: stores and C libraries would cut it there.
  func checkText(_ texts: String?...) throws {
    for text in texts where text?.utf8.contains(0) == true {
      throw OperationError(.usage, "a comment or author cannot contain a NUL character")
    }
  }

  /// What a push, import or restore decided, before its list of changes is made.
  enum Decided {
    case created(Version)
    case unchanged(Version)
  }

  /// The change `decided` made; a new version comes with what it changed against its parent.
  ///
  /// The callers let go of their files and tree first. What they held lies freed in malloc's heaps,
  /// between what is still kept, and is given back before the list grows: left there, a first push
  /// of 100,000 files peaked at its list of changes, 6 to 8 MiB above its scan.
  func change(_ decided: Decided) async throws -> Change {
    switch decided {
    case .created(let version):
      FreedMemory.giveBack()
      return .created(
        version, changes: try await store.changedFiles(app: version.app, from: version.parent, to: version.number))
    case .unchanged(let head):
      return .unchanged(head: head)
    }
  }

  // MARK: Upkeep

  public func check(logger: Logger) async throws -> CheckReport {
    try await store.check()
  }

  /// Removes the staging folders and upload spools of processes that are gone; returns how many.
  @discardableResult
  public func removeAbandonedStaging() -> Int {
    StagingArea.removeAbandoned(in: store.stagingFolder)
      + StagingArea.removeAbandoned(in: store.stagingFolder + "/uploads")
  }

  /// What `collectGarbage` removed.
  public struct Collected: Sendable {
    public var blobs: Int
    /// Staging folders of imports whose process is gone.
    public var stagingFolders: Int
  }

  /// Removes blobs nothing refers to that are older than `grace`, and abandoned staging folders.
  public func collectGarbage(grace: TimeInterval = 3600, logger: Logger) async throws -> Collected {
    let staging = removeAbandonedStaging()
    let blobs = try await store.collectGarbage(grace: grace)
    logger.info("garbage collected", metadata: ["blobs": "\(blobs)", "staging": "\(staging)"])
    return Collected(blobs: blobs, stagingFolders: staging)
  }
}
