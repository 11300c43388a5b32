import Foundation

/// A backup file found in a backup folder, as its name and size describe it, before anything is read.
public struct BackupFile: Sendable, Codable, Equatable {
  public var app: String
  public var environment: String
  public var version: Int
  /// When it was written, from its name (UTC, to the second).
  public var writtenAt: Date
  /// The file's size.
  public var bytes: Int64
  public var compression: Compression
  /// Its path: the backup folder as given, then `<app>/<env>/<name>`.
  public var file: String
}

/// A folder that backups are written into, `<folder>/<app>/<env>/<backup name>`, read for listing.
public struct BackupFolder: Sendable {
  public var path: String

  public init(_ path: String) {
    self.path = path
  }

  /// The backups of the selected apps and environments, oldest first, in either name layout.
  ///
  /// Files whose names confvault does not write, and folders whose names are not app or environment
  /// names, are passed over.
  ///
  /// - Parameters:
  ///   - apps: the apps to list; empty means every app with backups.
  ///   - environments: the environments to list; empty means every environment with backups.
  /// - Throws: `SystemError` when the folder cannot be listed; `OperationError` of kind `.notFound`
  ///   when an app or environment asked for has no backups in it, naming those that do.
  public func backups(apps: [String] = [], environments: [String] = []) throws -> [BackupFile] {
    var found: [BackupFile] = []
    var appsWithBackups: [String] = []
    var environmentsWithBackups: [String] = []
    for app in try folders(in: path) {
      let selected = apps.isEmpty || apps.contains(app)
      for environment in try folders(in: path + "/" + app) {
        let files = files(app: app, environment: environment)
        guard !files.isEmpty else { continue }
        if !appsWithBackups.contains(app) { appsWithBackups.append(app) }
        guard selected else { continue }
        if !environmentsWithBackups.contains(environment) { environmentsWithBackups.append(environment) }
        if environments.isEmpty || environments.contains(environment) { found += files }
      }
    }
    for app in apps where !appsWithBackups.contains(app) {
      throw OperationError(
        .notFound, "no backups of app '\(app)' in `\(path)`; apps with backups there: \(listed(appsWithBackups))")
    }
    for environment in environments where !environmentsWithBackups.contains(environment) {
      throw OperationError(
        .notFound,
        "no backups of environment '\(environment)' in `\(path)`"
          + (apps.isEmpty ? "" : " for \(apps.joined(separator: ", "))")
          + "; environments with backups there: \(listed(environmentsWithBackups.sorted()))")
    }
    return found.sorted {
      ($0.writtenAt, $0.version, $0.app, $0.environment, $0.file)
        < ($1.writtenAt, $1.version, $1.app, $1.environment, $1.file)
    }
  }

  /// The names of one environment's backups, in no order; none when its folder cannot be listed.
  func names(app: String, environment: String) -> [BackupName] {
    let folder = path + "/" + app + "/" + environment
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return [] }
    return names.compactMap { BackupName(fileName: $0, app: app, environment: environment) }
  }

  /// The newest of one environment's backups that reads back good in full: its manifest and every
  /// file's size and SHA-256 check out within `limits`, and the manifest names the app, environment
  /// and version the file's name says.
  ///
  /// Backups are read newest first until one is good, so a damaged or truncated newest file is passed
  /// over for the one before it rather than trusted for its name.
  ///
  /// - Parameters:
  ///   - backups: one environment's backups, in any order.
  ///   - skipped: called with each newer backup that did not read back good, and why.
  /// - Throws: `OperationError` when none reads back good, with the newest one's reason and its kind
  ///   (`.badInput` for a refused archive).
  public static func newestGood(
    _ backups: [BackupFile], limits: ArchiveLimits, skipped: (BackupFile, any Error) -> Void = { _, _ in }
  ) throws -> BackupFile {
    var firstFailure: (BackupFile, any Error)?
    for backup in backups.sorted(by: { ($0.writtenAt, $0.version) > ($1.writtenAt, $1.version) }) {
      do {
        try readBack(backup, limits: limits)
        return backup
      } catch {
        skipped(backup, error)
        if firstFailure == nil { firstFailure = (backup, error) }
      }
    }
    guard let (newest, error) = firstFailure else {
      throw OperationError(.notFound, "no backups to choose from")
    }
    // However the newest failed (unreadable, refused), what is missing is a good backup: bad data.
    throw OperationError(
      .badInput,
      "no backup of \(newest.app)/\(newest.environment) reads back good (\(backups.count) tried); the newest, `\(newest.file)`: \(error)",
      hint: (error as? any ConfvaultError)?.hint, cause: error)
  }

  /// Reads `backup` in full and checks that it holds what its name says.
  ///
  /// - Throws: what the archive reader refuses, or `OperationError` of kind `.badInput` when the
  ///   manifest names another app, environment or version.
  public static func readBack(_ backup: BackupFile, limits: ArchiveLimits) throws {
    let contents = try ArchiveReader(limits: limits, allowEmpty: true).read(from: .file(backup.file))
    let manifest = contents.manifest
    guard manifest?.app == backup.app, manifest?.environment == backup.environment,
      manifest?.version?.number == backup.version
    else {
      let holds =
        "\(manifest?.app ?? "no app")/\(manifest?.environment ?? "no environment") v\(manifest?.version?.number ?? 0)"
      throw OperationError(
        .badInput,
        "its manifest says \(holds), not \(backup.app)/\(backup.environment) v\(backup.version) as its name does")
    }
  }

  /// The subfolders of `folder` whose names are app or environment names, sorted.
  private func folders(in folder: String) throws -> [String] {
    guard let handle = opendir(folder) else { throw SystemError(.list, folder) }
    defer { closedir(handle) }
    var names: [String] = []
    while let entry = readdir(handle) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
      var status = stat()
      guard (try? Name.validate(name, as: "app")) != nil, stat(folder + "/" + name, &status) == 0,
        status.st_mode & S_IFMT == S_IFDIR
      else { continue }
      names.append(name)
    }
    return names.sorted()
  }

  private func files(app: String, environment: String) -> [BackupFile] {
    let folder = path + "/" + app + "/" + environment
    return names(app: app, environment: environment).compactMap { name in
      var status = stat()
      let file = folder + "/" + name.fileName
      // Regular files only: confvault writes nothing else at a backup name.
      guard lstat(file, &status) == 0, status.st_mode & S_IFMT == S_IFREG else { return nil }
      return BackupFile(
        app: app, environment: environment, version: name.version,
        writtenAt: Date(timeIntervalSince1970: TimeInterval(name.time)), bytes: Int64(status.st_size),
        compression: name.compression, file: file)
    }
  }

  private func listed(_ names: [String]) -> String {
    names.isEmpty ? "none" : names.joined(separator: ", ")
  }
}
