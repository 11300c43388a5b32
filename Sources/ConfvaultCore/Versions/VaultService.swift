import Foundation
import Logging

/// The use cases the command line runs, wherever they run: `Vault` over a store on this machine, or a
/// client over a server's HTTP API. Both give the same results, so every command prints the same
/// whichever it talks to.
public protocol VaultService: Sendable {
  func apps(logger: Logger) async throws -> [AppInfo]
  func app(_ name: String, logger: Logger) async throws -> AppInfo
  func versionsPage(app: String, environment: String?, before: Int?, limit: Int, logger: Logger) async throws
    -> Vault.VersionsPage
  func show(app: String, number: Int, logger: Logger) async throws -> Vault.VersionDetail
  /// The files that differ between two versions, and (with `details`) what changed inside each: by key
  /// path where the content allows it, or (with `asText`) always as text hunks.
  func diff(app: String, _ selection: Vault.DiffSelection, details: Bool, asText: Bool, logger: Logger) async throws
    -> Vault.Diff
  func audit(app: String?, limit: Int, logger: Logger) async throws -> [AuditEntry]
  /// The version asked for: `number`, or else the head of `environment`.
  func resolve(app: String, environment: String?, number: Int?, logger: Logger) async throws -> Version
  /// Writes `version` as an archive and records the export.
  func export(
    _ version: Version, environment: String?, compression: Compression, to output: ArchiveOutput, author: String,
    logger: Logger
  ) async throws -> ExportedArchive
  func importArchive(
    _ source: ArchiveSource, app: String, environment: String, comment: String?, author: String,
    reader: ArchiveReader, allowOtherApp: Bool, dryRun: Bool, expectedHead: Vault.ExpectedHead?,
    approval: Approval?, logger: Logger
  ) async throws -> Vault.ImportResult
  func restore(
    app: String, number: Int, environment: String, comment: String?, author: String,
    expectedHead: Vault.ExpectedHead?, logger: Logger
  ) async throws -> Vault.Change
  func sync(
    app: String, number: Int, environment: String?, author: String, expectedHead: Vault.ExpectedHead?,
    logger: Logger
  ) async throws -> Vault.SyncResult
  /// What restoring version `number` into `environment` would change; nothing is written.
  func previewRestore(app: String, number: Int, environment: String, logger: Logger) async throws -> Vault.Preview
  /// What syncing version `number` to `environment` (default: production) would change; nothing is written.
  func previewSync(app: String, number: Int, environment: String?, logger: Logger) async throws -> Vault.Preview
  /// Writes `version` as an archive for a backup: recorded once per run by `recordBackup`.
  func writeBackup(
    _ version: Version, environment: String, compression: Compression, to output: ArchiveOutput, logger: Logger
  ) async throws -> ExportedArchive
  /// Records a backup run's outcome for one environment in the audit log, where the service keeps one.
  func recordBackup(
    app: String, environment: String, version: Int?, author: String, detail: String, archiveSHA256: SHA256Hex?
  ) async throws
}

/// What writing an archive of a version produced.
public struct ExportedArchive: Sendable {
  public var fileCount: Int
  public var totalSize: Int64
  public var treeDigest: TreeDigest
  /// The archive's size.
  public var bytes: Int64
  /// The SHA-256 of the archive's bytes, as written.
  public var sha256: SHA256Hex

  public init(fileCount: Int, totalSize: Int64, treeDigest: TreeDigest, bytes: Int64, sha256: SHA256Hex) {
    self.fileCount = fileCount
    self.totalSize = totalSize
    self.treeDigest = treeDigest
    self.bytes = bytes
    self.sha256 = sha256
  }
}

extension Vault: VaultService {
  public func diff(app: String, _ selection: DiffSelection, details: Bool, asText: Bool, logger: Logger) async throws
    -> Diff
  {
    let comparison = try await compare(app: app, selection, logger: logger)
    return Diff(
      from: comparison.from, to: comparison.to, changes: comparison.changes,
      files: details ? try await describe(comparison.changes, asText: asText, logger: logger) : nil)
  }

  public func writeBackup(
    _ version: Version, environment: String, compression: Compression, to output: ArchiveOutput, logger: Logger
  ) async throws -> ExportedArchive {
    try await writeArchive(version, environment: environment, compression: compression, to: output, logger: logger)
  }

  public func recordBackup(
    app: String, environment: String, version: Int?, author: String, detail: String, archiveSHA256: SHA256Hex?
  ) async throws {
    try await store.apply(
      StoreChange(
        .note(app: app, environment: environment, action: .backup, version: version), author: author, at: clock(),
        detail: detail, archiveSHA256: archiveSHA256))
  }
}

extension VaultService {
  /// The files that differ between two versions, and (with `details`) what changed inside each.
  public func diff(app: String, _ selection: Vault.DiffSelection, details: Bool, logger: Logger) async throws
    -> Vault.Diff
  {
    try await diff(app: app, selection, details: details, asText: false, logger: logger)
  }
}

extension Vault {
  /// Two versions' differing files, and what changed inside each when asked for.
  public struct Diff: Sendable, Codable {
    @ExplicitNull public var from: Int?
    public var to: Int
    public var changes: [FileChange]
    /// Nil unless details were asked for.
    public var files: [FileDiff]?

    public init(from: Int?, to: Int, changes: [FileChange], files: [FileDiff]?) {
      self.from = from
      self.to = to
      self.changes = changes
      self.files = files
    }
  }
}
