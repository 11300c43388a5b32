import Foundation
import Logging

/// One scheduled backup: each selected environment's head written to a folder, read back, and the
/// folder's older backups thinned by a retention policy that never loses the last good one.
public struct BackupRun: Sendable {
  public struct Options: Sendable {
    public var folder: String
    /// Apps to back up; empty means every app.
    public var apps: [String] = []
    /// Environments to back up; empty means every environment with a head.
    public var environments: [String] = []
    public var compression: Compression = .zstd
    /// What a backup may hold when it is read back, as for any archive read from outside: a version
    /// the limits refuse fails its backup with that refusal, not with a file nobody can import.
    public var limits = ArchiveLimits.default
    public var retention = RetentionPolicy()
    /// Write even when the newest backup holds the same version and tree.
    public var always = false
    public var dryRun = false
    /// Seconds to wait for another run's lock.
    public var wait: TimeInterval = 0
    public var author: String

    public init(folder: String, author: String) {
      self.folder = folder
      self.author = author
    }
  }

  /// What happened to one environment.
  public struct Outcome: Sendable, Codable {
    public enum Status: String, Sendable, Codable { case written, unchanged, failed }

    public var app: String
    public var environment: String
    public var status: Status
    public var version: Int?
    public var file: String?
    public var bytes: Int64?
    public var sha256: SHA256Hex?
    public var seconds: Double
    public var message: String?
    /// The failure's kind, for the exit code.
    public var failureKind: FailureKind?
    /// What to do about the failure (raise a limit the read-back hit), for the front end to say.
    public var hint: Hint?
    public var deleted: [String] = []
    /// For a dry run, what would be written.
    public var wouldWrite: String?

    private enum CodingKeys: String, CodingKey {
      case app, environment, status, version, file, bytes, sha256, seconds, message, failureKind, deleted, wouldWrite
    }
  }

  public static let lockName = ".confvault-backup.lock"
  public static let stateName = ".confvault-backup.json"

  public let service: any VaultService
  public let options: Options

  public init(service: any VaultService, options: Options) {
    self.service = service
    self.options = options
  }

  /// What a run did, and the folder's state after it (nil for a dry run).
  public struct Report: Sendable {
    public var outcomes: [Outcome]
    public var state: BackupState?
  }

  /// Runs the backup; one environment's failure does not stop the others.
  ///
  /// - Throws: only what stops the whole run: the folder cannot be made or locked, the store fails.
  /// - Parameter finished: called with each environment's outcome as soon as it is known, so a
  ///   terminal shows progress line by line.
  public func run(logger: Logger, finished: (Outcome) -> Void = { _ in }) async throws -> Report {
    let lock: FolderLock?
    if options.dryRun {
      lock = nil
    } else {
      try makeFolders(options.folder)
      lock = try FolderLock(folder: options.folder, name: BackupRun.lockName, wait: options.wait)
    }
    defer { withExtendedLifetime(lock) {} }
    let startedAt = Timestamp.now()
    var outcomes: [Outcome] = []
    for (app, environment, head) in try await selection(logger: logger) {
      let outcome = await backUp(app: app, environment: environment, head: head, logger: logger)
      finished(outcome)
      outcomes.append(outcome)
    }
    guard !options.dryRun else { return Report(outcomes: outcomes, state: nil) }
    let state = try BackupState.record(outcomes, startedAt: startedAt, in: options.folder)
    try await recordAudit(outcomes)
    return Report(outcomes: outcomes, state: state)
  }

  private func selection(logger: Logger) async throws -> [(String, String, Int)] {
    var apps: [AppInfo] = []
    if options.apps.isEmpty {
      apps = try await service.apps(logger: logger)
    } else {
      for name in options.apps { apps.append(try await service.app(name, logger: logger)) }
    }
    for name in options.environments where !apps.contains(where: { $0.environments.contains { $0.name == name } }) {
      var known: [String] = []
      for environment in apps.flatMap(\.environments) where !known.contains(environment.name) {
        known.append(environment.name)
      }
      throw OperationError(
        .notFound,
        "no environment '\(name)' in the selected apps; environments: \(known.isEmpty ? "none" : known.joined(separator: ", "))"
      )
    }
    var selected: [(String, String, Int)] = []
    for app in apps {
      for environment in app.environments {
        guard options.environments.isEmpty || options.environments.contains(environment.name),
          let head = environment.head
        else { continue }
        selected.append((app.name, environment.name, head))
      }
    }
    return selected
  }

  private func backUp(app: String, environment: String, head: Int, logger: Logger) async -> Outcome {
    let started = Date()
    var outcome = Outcome(app: app, environment: environment, status: .failed, version: head, seconds: 0)
    let folder = options.folder + "/" + app + "/" + environment
    do {
      let version = try await service.resolve(app: app, environment: nil, number: head, logger: logger)
      if !options.dryRun {
        try makeFolders(folder)
        // Temporary files of runs killed mid-write, also when this run writes nothing.
        TemporaryFiles.removeStale(in: folder)
      }
      // The backup this run has read back good (or, in a dry run, would write): retention keeps it
      // without reading it again.
      var knownGood: BackupName?
      let newest = BackupFolder(options.folder).names(app: app, environment: environment).max()
      if !options.always, let newest, newest.version == head,
        (try? verify(folder + "/" + newest.fileName)) == version.treeDigest
      {
        knownGood = newest
        outcome.status = .unchanged
        outcome.file = folder + "/" + newest.fileName
        outcome.message = "unchanged since \(Timestamp.iso8601(Date(timeIntervalSince1970: TimeInterval(newest.time))))"
      } else {
        let name = BackupName(
          app: app, environment: environment, version: head, time: Int64(Timestamp.now().timeIntervalSince1970),
          compression: options.compression)
        let path = folder + "/" + name.fileName
        knownGood = name
        if FileManager.default.fileExists(atPath: path) {
          // --always twice in one second, or a newest backup that did not check out above: that
          // second's name is taken, and what is there decides (a backup never replaces a file).
          try readBack(path, as: version, writtenNow: false)
          outcome.status = .unchanged
          outcome.file = path
          outcome.message = "written in this second already"
        } else if options.dryRun {
          outcome.status = .written
          outcome.wouldWrite = path
        } else {
          let written = try await service.writeBackup(
            version, environment: environment, compression: options.compression,
            to: .file(path, replaceExisting: false), logger: logger)
          try readBack(path, as: version, writtenNow: true)
          outcome.status = .written
          outcome.file = path
          outcome.bytes = written.bytes
          outcome.sha256 = written.sha256
        }
      }
      outcome.deleted = try applyRetention(in: folder, app: app, environment: environment, knownGood: knownGood)
    } catch {
      outcome.status = .failed
      outcome.message = "\(error)"
      outcome.failureKind = (error as? any ConfvaultError)?.kind ?? .operationFailed
      outcome.hint = (error as? any ConfvaultError)?.hint
    }
    // Set here, not in a `defer`: a `defer` would run after the value returned was copied.
    outcome.seconds = Date().timeIntervalSince(started)
    return outcome
  }

  /// The tree digest of a backup file, read in full within the run's limits.
  private func verify(_ path: String) throws -> TreeDigest {
    try ArchiveReader(limits: options.limits, allowEmpty: true).read(from: .file(path)).treeDigest
  }

  /// Reads a backup of `version` back in full; a backup counts only once it has and matches the store.
  ///
  /// - Parameter writtenNow: the file was written by this run, and is removed when it fails.
  /// - Throws: the reader's refusal with its kind (a limit the version exceeds is bad input, exit 65,
  ///   not a disk error), a read error with its kind, and a digest that differs from the store's as
  ///   an I/O error.
  private func readBack(_ path: String, as version: Version, writtenNow: Bool) throws {
    let fate = writtenNow ? "; it was removed" : "; it was left in place"
    let digest: TreeDigest
    do {
      digest = try verify(path)
    } catch {
      if writtenNow { unlink(path) }
      throw OperationError(
        (error as? any ConfvaultError)?.kind ?? .ioError,
        "`\(path)` (version \(version.number)) did not read back\(fate): \(error)",
        hint: (error as? any ConfvaultError)?.hint, cause: error)
    }
    guard digest == version.treeDigest else {
      if writtenNow { unlink(path) }
      throw OperationError(
        .ioError,
        "`\(path)` did not read back as version \(version.number) (tree digest \(digest), the store has \(version.treeDigest))\(fate)"
      )
    }
  }

  /// Deletes what the policy does not keep, never the newest backup that reads back good.
  ///
  /// - Parameter knownGood: the backup this run read back good, or in a dry run would write.
  private func applyRetention(in folder: String, app: String, environment: String, knownGood: BackupName?) throws
    -> [String]
  {
    guard !options.retention.isEmpty else { return [] }
    var all = BackupFolder(options.folder).names(app: app, environment: environment)
    if let knownGood, !all.contains(knownGood) { all.append(knownGood) }  // a dry run's planned file
    var keep = options.retention.kept(all)
    // The backup this run read back good is kept whatever the names of older files say about time
    // (a file copied in, or written under a clock that ran ahead, may look newer).
    if let knownGood, let index = all.firstIndex(of: knownGood) { keep.insert(index) }
    let newestFirst = all.indices.sorted { all[$0] > all[$1] }
    let readsBackGood = { (index: Int) in
      all[index] == knownGood || (try? verify(folder + "/" + all[index].fileName)) != nil
    }
    if let good = newestFirst.first(where: readsBackGood) {
      keep.insert(good)
    } else {
      return []  // no backup reads back good: delete nothing
    }
    var deleted: [String] = []
    for index in newestFirst where !keep.contains(index) {
      let path = folder + "/" + all[index].fileName
      if !options.dryRun && unlink(path) != 0 {
        let failure = SystemError(.remove, path)
        throw OperationError(
          failure.kind,
          "retention: \(failure)" + (deleted.isEmpty ? "" : " (after deleting \(deleted.joined(separator: ", ")))"))
      }
      deleted.append(path)
    }
    if !deleted.isEmpty && !options.dryRun { syncFolder(folder) }
    return deleted
  }

  private func recordAudit(_ outcomes: [Outcome]) async throws {
    for outcome in outcomes {
      try await service.recordBackup(
        app: outcome.app, environment: outcome.environment, version: outcome.version, author: options.author,
        detail: "\(outcome.status.rawValue)" + (outcome.file.map { " \($0)" } ?? "")
          + (outcome.message.map { ": \($0)" } ?? "")
          + (outcome.deleted.isEmpty ? "" : "; retention deleted \(outcome.deleted.count)"),
        archiveSHA256: outcome.sha256)
    }
  }

}

extension VaultService {
  /// Writes each selected environment's head to a backup folder, reads it back, applies retention.
  ///
  /// - Throws: only what stops the whole run: the folder cannot be made or locked, the store fails.
  public func backup(
    _ options: BackupRun.Options, logger: Logger, finished: (BackupRun.Outcome) -> Void = { _ in }
  ) async throws -> BackupRun.Report {
    try await BackupRun(service: self, options: options).run(logger: logger, finished: finished)
  }
}
