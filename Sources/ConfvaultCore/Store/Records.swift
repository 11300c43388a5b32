import Foundation

/// How a version came to be.
public enum Origin: String, Sendable, Codable, CaseIterable {
  case push, `import`, restore
}

/// Where an imported version came from: the archive's own digest and what its manifest said.
public struct ImportOrigin: Sendable, Equatable, Codable {
  public var archiveSHA256: SHA256Hex
  @ExplicitNull public var app: String?
  @ExplicitNull public var environment: String?
  @ExplicitNull public var version: Int?

  public init(archiveSHA256: SHA256Hex, app: String?, environment: String?, version: Int?) {
    self.archiveSHA256 = archiveSHA256
    self.app = app
    self.environment = environment
    self.version = version
  }
}

/// An immutable snapshot of a configuration, numbered per app.
public struct Version: Sendable, Equatable, Codable {
  public var app: String
  public var number: Int
  public var environment: String
  public var author: String
  public var createdAt: Date
  public var comment: String
  public var origin: Origin
  /// The environment's head when this version was made.
  @ExplicitNull public var parent: Int?
  @ExplicitNull public var restoredFrom: Int?
  @ExplicitNull public var importedFrom: ImportOrigin?
  /// Pinned: kept by every retention rule.
  public var backup: Bool
  /// When it last went to production.
  @ExplicitNull public var syncedAt: Date?
  public var treeDigest: TreeDigest
  public var fileCount: Int
  public var totalSize: Int64

  public init(
    app: String, number: Int, environment: String, author: String, createdAt: Date, comment: String,
    origin: Origin, parent: Int?, restoredFrom: Int?, importedFrom: ImportOrigin?, backup: Bool,
    syncedAt: Date?, treeDigest: TreeDigest, fileCount: Int, totalSize: Int64
  ) {
    self.app = app
    self.number = number
    self.environment = environment
    self.author = author
    self.createdAt = createdAt
    self.comment = comment
    self.origin = origin
    self.parent = parent
    self.restoredFrom = restoredFrom
    self.importedFrom = importedFrom
    self.backup = backup
    self.syncedAt = syncedAt
    self.treeDigest = treeDigest
    self.fileCount = fileCount
    self.totalSize = totalSize
  }
}

/// The colour of a version in the versions list.
public enum SyncStatus: String, Sendable, Codable {
  /// Green: the production environment's head.
  case currentProduction = "current-production"
  /// Yellow: went to production once, is not there now.
  case synced
  /// Blue: never went to production.
  case notSynced = "not-synced"

  /// The status of `version` given the production environment's head.
  public init(of version: Version, productionHead: Int?) {
    if version.number == productionHead {
      self = .currentProduction
    } else {
      self = version.syncedAt == nil ? .notSynced : .synced
    }
  }
}

/// An app's named target; at most one per app is production.
public struct EnvironmentInfo: Sendable, Equatable, Codable {
  public var name: String
  public var isProduction: Bool
  /// The number of its current version, if any.
  @ExplicitNull public var head: Int?
  public var createdAt: Date

  public init(name: String, isProduction: Bool, head: Int?, createdAt: Date) {
    self.name = name
    self.isProduction = isProduction
    self.head = head
    self.createdAt = createdAt
  }
}

/// A configuration project and its environments.
public struct AppInfo: Sendable, Equatable, Codable {
  public var name: String
  public var createdAt: Date
  public var environments: [EnvironmentInfo]

  public init(name: String, createdAt: Date, environments: [EnvironmentInfo]) {
    self.name = name
    self.createdAt = createdAt
    self.environments = environments
  }

  public var production: EnvironmentInfo? { environments.first(where: \.isProduction) }

  /// The environment named `name`, or a `.notFound` error that lists the ones there are.
  public func environment(_ name: String) throws -> EnvironmentInfo {
    guard let found = environments.first(where: { $0.name == name }) else {
      let names = environments.map(\.name).joined(separator: ", ")
      throw OperationError(
        .notFound,
        "no environment '\(name)' in app '\(self.name)'; environments: \(names.isEmpty ? "none" : names)",
        hint: .createEnvironment(app: self.name, name: name))
    }
    return found
  }
}

/// What an audit entry records.
public enum AuditAction: String, Sendable, Codable, CaseIterable {
  case `init`
  case environmentCreate = "env-create"
  case environmentDelete = "env-delete"
  case environmentSetProduction = "env-set-production"
  case push, `import`, restore, sync, export, backup

  /// The action of adding a version of `origin`.
  public init(_ origin: Origin) {
    switch origin {
    case .push: self = .push
    case .import: self = .import
    case .restore: self = .restore
    }
  }
}

/// One line of the append-only audit log.
public struct AuditEntry: Sendable, Equatable, Codable {
  public var id: Int64
  public var at: Date
  public var author: String
  public var app: String
  @ExplicitNull public var environment: String?
  public var action: AuditAction
  @ExplicitNull public var version: Int?
  @ExplicitNull public var archiveSHA256: SHA256Hex?
  public var detail: String

  public init(
    id: Int64, at: Date, author: String, app: String, environment: String?, action: AuditAction,
    version: Int?, archiveSHA256: SHA256Hex?, detail: String
  ) {
    self.id = id
    self.at = at
    self.author = author
    self.app = app
    self.environment = environment
    self.action = action
    self.version = version
    self.archiveSHA256 = archiveSHA256
    self.detail = detail
  }
}

/// What a new version is made of, before the store gives it a number.
public struct VersionDraft: Sendable {
  public var app: String
  public var environment: String
  public var comment: String
  public var origin: Origin
  public var restoredFrom: Int?
  public var importedFrom: ImportOrigin?
  public var backup: Bool
  /// The version's files, with their digest and folders.
  public var tree: VersionTree

  /// The version's files; setting them builds their tree again.
  public var files: [ManifestFile] {
    get { tree.files }
    set { tree = VersionTree(files: newValue) }
  }

  public init(
    app: String, environment: String, comment: String, origin: Origin, restoredFrom: Int? = nil,
    importedFrom: ImportOrigin? = nil, backup: Bool = false, tree: VersionTree
  ) {
    self.app = app
    self.environment = environment
    self.comment = comment
    self.origin = origin
    self.restoredFrom = restoredFrom
    self.importedFrom = importedFrom
    self.backup = backup
    self.tree = tree
  }

  public init(
    app: String, environment: String, comment: String, origin: Origin, restoredFrom: Int? = nil,
    importedFrom: ImportOrigin? = nil, backup: Bool = false, files: [ManifestFile]
  ) {
    self.init(
      app: app, environment: environment, comment: comment, origin: origin, restoredFrom: restoredFrom,
      importedFrom: importedFrom, backup: backup, tree: VersionTree(files: files))
  }

  /// Whether the head it replaces is pinned as a backup first: imports and restores roll back, so the
  /// state just before them is kept.
  public var pinsReplacedHead: Bool { origin != .push }
}

/// What `check` found wrong; empty when the store is consistent.
public struct CheckReport: Sendable, Codable, Equatable {
  public var problems: [String]
  /// Blobs no version refers to: harmless, removed by `gc` after its grace period.
  public var unreferencedBlobs: Int
  public var versions: Int
  public var blobs: Int
  /// Stored folder records, and their bytes as stored: what the versions' trees cost.
  public var folders: Int
  public var folderBytes: Int64

  public init(
    problems: [String], unreferencedBlobs: Int, versions: Int, blobs: Int, folders: Int, folderBytes: Int64
  ) {
    self.problems = problems
    self.unreferencedBlobs = unreferencedBlobs
    self.versions = versions
    self.blobs = blobs
    self.folders = folders
    self.folderBytes = folderBytes
  }

  public var isConsistent: Bool { problems.isEmpty }
}
