import Foundation
import Logging

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

  /// What pushing `folder` to `environment` would change; nothing is written.
  public func previewPush(
    app: String, environment: String, folder: String, limits: ArchiveLimits = .default, logger: Logger
  ) async throws -> Preview {
    _ = try await store.app(app).environment(environment)
    let (files, paths) = try await offload {
      let found = try ConfigurationFolder.scan(folder, limits: limits)
      return (
        try ConfigurationArchive.hash(found),
        Dictionary(found.map { ($0.path, $0.absolutePath) }, uniquingKeysWith: { a, _ in a })
      )
    }
    let head = try await store.app(app).environment(environment).head
    var old: [ManifestFile] = []
    if let head { old = try await store.files(app: app, number: head) }
    let changes = FileChange.between(old: old, new: files)
    var diffs: [FileDiff] = []
    for change in changes {
      guard change.kind == .modified, let before = change.old, let after = change.new,
        before.size <= ContentDiff.largestCompared, after.size <= ContentDiff.largestCompared,
        let path = paths[change.path]
      else {
        diffs.append(FileDiff(change: change, detail: .sizes(old: change.old?.size, new: change.new?.size)))
        continue
      }
      var oldBytes = Data()
      try await store.readBlob(before.sha256) { oldBytes.append(contentsOf: $0) }
      let newBytes = try await offload { try Data(contentsOf: URL(fileURLWithPath: path)) }
      diffs.append(FileDiff(change: change, detail: ContentDiff.compare(path: change.path, oldBytes, newBytes)))
    }
    return Preview(app: app, environment: environment, head: head, changes: changes, files: diffs)
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
        files.append(FileDiff(change: change, detail: ContentDiff.compare(path: change.path, before, new)))
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
