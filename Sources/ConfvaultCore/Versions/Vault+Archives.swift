import Foundation
import Logging

extension Vault {
  /// The version asked for: `number`, or else the head of `environment`.
  ///
  /// - Throws: `.usage` when neither is given; `.notFound` when there is no such version or head.
  public func resolve(app: String, environment: String?, number: Int?, logger: Logger) async throws -> Version {
    if let number { return try await store.version(app: app, number: number) }
    guard let environment else {
      throw OperationError(.usage, "name a version or an environment")
    }
    guard let head = try await store.app(app).environment(environment).head else {
      throw OperationError(
        .notFound, "environment '\(environment)' of app '\(app)' has no version yet; push or import one first")
    }
    return try await store.version(app: app, number: head)
  }

  /// Writes `version` as a v1 archive, streaming from the store, and records the export.
  ///
  /// Deterministic: the same version gives the same bytes every time. A store this process may read
  /// but not write (a read-only mount, no write permission, a full disk) still exports: the archive is
  /// written and a warning says the export could not be recorded in the audit log.
  ///
  /// - Parameter environment: the environment the archive is said to come from (its head was asked
  ///   for); nil for a version asked for by number, which names the environment it was made in.
  public func export(
    _ version: Version, environment: String?, compression: Compression, to output: ArchiveOutput, author: String,
    logger: Logger
  ) async throws -> ExportedArchive {
    let environment = environment ?? version.environment
    let written = try await writeArchive(
      version, environment: environment, compression: compression, to: output, logger: logger)
    do {
      try await store.apply(
        StoreChange(
          .note(app: version.app, environment: environment, action: .export, version: version.number),
          author: author, at: clock(),
          detail: "exported to \(output.displayName) (\(compression.rawValue), \(written.bytes) bytes)",
          archiveSHA256: written.sha256))
    } catch let error as any ConfvaultError where error.kind == .permissionDenied || error.kind == .ioError {
      // The archive is whole and in place, read from the store and flushed to disk; a store that
      // cannot take a write (read-only, not this user's to write, its disk full) must not undo that.
      logger.warning(
        "v\(version.number) of \(version.app)/\(environment) was exported to \(output.displayName), but the export could not be recorded in the audit log: \(error)"
      )
    }
    return written
  }

  /// Streams `version` from the store into a v1 archive, recording nothing.
  public func writeArchive(
    _ version: Version, environment: String, compression: Compression, to output: ArchiveOutput, logger: Logger
  ) async throws -> ExportedArchive {
    let files = try await store.files(app: version.app, number: version.number)
    let manifest = Manifest(
      app: version.app, environment: environment,
      version: Manifest.VersionInfo(
        number: version.number, author: version.author, createdAt: version.createdAt, comment: version.comment,
        origin: version.origin.rawValue, syncedAt: version.syncedAt),
      files: files)
    let target = try OpenedOutput(output)
    let writer = try ConfigurationArchiveWriter(
      manifest: manifest, modificationTime: Int64(version.createdAt.timeIntervalSince1970),
      compression: compression, sink: target.sink, destination: output.displayName, logger: logger)
    // The writer takes the manifest's files in its order.
    try await store.forEachBlob(manifest.files.map { ($0.sha256, $0.size) }) { _, blob in
      try await writer.writeFile { write in try await blob.read(write) }
      try await target.flush()
    }
    let written = try writer.finish()
    try await target.flush(all: true)
    try target.commit()
    return ExportedArchive(
      fileCount: manifest.fileCount, totalSize: manifest.totalSize, treeDigest: manifest.treeDigest,
      bytes: written.bytes, sha256: written.sha256)
  }

  /// Writes the head of `environment` into a new folder, atomically.
  ///
  /// - Parameter storeName: how the front end names this store: the folder then gets a checkout
  ///   record (`.confvault/checkout.json`) saying where it came from, written with the files, so a
  ///   later push or status can tell when the head has moved past it. Nil writes no record.
  public func checkout(
    app: String, environment: String, to folder: String, storeName: String? = nil, logger: Logger
  ) async throws -> Version {
    let version = try await resolve(app: app, environment: environment, number: nil, logger: logger)
    let target = try AtomicFolder(path: folder)
    let sink = FolderWritingSink(root: target.stagingPath)
    let files = try await store.files(app: app, number: version.number)
    if let storeName {
      if files.contains(where: { $0.path == CheckoutRecord.folderName || $0.path == CheckoutRecord.relativePath }) {
        logger.warning(
          "v\(version.number) holds `\(CheckoutRecord.relativePath)` itself; \(folder) gets no checkout record")
      } else {
        try CheckoutRecord(version, environment: environment, store: storeName).create(in: target.stagingPath)
      }
    }
    try await store.forEachBlob(files.map { ($0.sha256, $0.size) }) { index, blob in
      let file = files[index]
      try sink.beginFile(path: file.path, mode: file.mode)
      var hasher = SHA256Stream()
      try await blob.read { chunk in
        hasher.update(chunk)
        try sink.write(chunk)
      }
      guard hasher.finalize() == file.sha256 else {
        throw OperationError(.internal, "stored content of `\(file.path)` is damaged", hint: .runCheck)
      }
      try sink.endFile(file)
    }
    try target.commit()
    return version
  }
}
