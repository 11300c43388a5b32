import Foundation

/// Where versions live. The embedded SQLite store is one conformance; a PostgreSQL store can be another.
///
/// Every method that changes something is atomic: it happens whole or not at all, and concurrent
/// processes on one store each succeed or fail cleanly.
public protocol VersionStore: Sendable {
  func apps() throws -> [AppInfo]
  /// The app named `name`, or an error that lists the apps there are.
  func app(_ name: String) throws -> AppInfo

  func createApp(_ name: String, environments: [String], production: String?, author: String) throws
  func createEnvironment(app: String, name: String, production: Bool, author: String) throws
  func deleteEnvironment(app: String, name: String, author: String) throws

  /// Versions of `app` (of one environment if given), newest first, numbered below `before`.
  func versions(app: String, environment: String?, before: Int?, limit: Int) throws -> [Version]
  func version(app: String, number: Int) throws -> Version
  /// The files of a version, in path byte order.
  func files(app: String, number: Int) throws -> [ManifestFile]
  /// The files that differ between two versions' trees, found without reading unchanged folders.
  func changedFiles(app: String, from: Int?, to: Int) throws -> [FileChange]
  /// Streams a stored blob's bytes.
  func readBlob(_ digest: SHA256Hex, _ body: (UnsafeRawBufferPointer) throws -> Void) throws
  /// Runs `body` in one write transaction: everything it does is committed together, or nothing is.
  func write<T>(_ body: (any StoreTransaction) throws -> T) throws -> T

  func audit(app: String?, limit: Int) throws -> [AuditEntry]
  func check() throws -> CheckReport
  /// Removes blobs no version refers to; returns how many.
  func collectGarbage() throws -> Int
}

/// What may be done inside `VersionStore.write`.
public protocol StoreTransaction {
  /// A sink that stores the bytes of each file it is handed as a blob (deduplicated by SHA-256).
  func blobSink() -> any ArchiveFileSink
  /// Whether a blob is already stored.
  func hasBlob(_ digest: SHA256Hex) throws -> Bool
  /// The app, as it is inside this transaction.
  func app(_ name: String) throws -> AppInfo
  func version(app: String, number: Int) throws -> Version
  /// Adds a version with the next number and makes it the environment's head; every blob must be stored.
  ///
  /// The head it replaces is pinned as a backup when `pinReplacedHead` is true.
  func addVersion(_ draft: VersionDraft, pinReplacedHead: Bool) throws -> Version
  /// Makes `number` the head of `environment`, pinning the head it replaces.
  func moveHead(app: String, environment: String, to number: Int) throws
  /// Marks a version as synced to production now, and pins it.
  func markSynced(app: String, number: Int, at: Date) throws
  /// Pins a version as a backup: retention keeps it.
  func pin(app: String, number: Int) throws
  func appendAudit(_ entry: AuditEntry) throws
}

/// One file that differs between two trees.
public struct FileChange: Sendable, Equatable, Codable {
  public enum Kind: String, Sendable, Codable {
    case added, removed, modified, modeChanged = "mode-changed"
  }

  public var path: String
  public var kind: Kind
  public var old: ManifestFile?
  public var new: ManifestFile?
}
