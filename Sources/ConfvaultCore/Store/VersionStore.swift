import Foundation

/// Where versions live: the embedded SQLite store is one conformance, a shared database another.
///
/// The operations are coarse and async, so that a store over a network and an HTTP handler can host
/// them. A read is one consistent snapshot. Content is immutable and content-addressed: blobs are
/// stored before, and outside, the change that uses them, idempotently. A change is one short `apply`
/// that names the head it was decided against and fails with a `.conflict` when that head has moved,
/// so no update is ever lost.
public protocol VersionStore: Sendable {
  // MARK: Reading

  func apps() async throws -> [AppInfo]
  /// The app named `name`, or a `.notFound` error that lists the apps there are.
  func app(_ name: String) async throws -> AppInfo
  /// Versions of `app` (of one environment if given), newest first, numbered below `before`.
  func versions(app: String, environment: String?, before: Int?, limit: Int) async throws -> [Version]
  func version(app: String, number: Int) async throws -> Version
  /// The files of a version, in path byte order.
  func files(app: String, number: Int) async throws -> [ManifestFile]
  /// The files that differ between two versions' trees, found without reading unchanged folders.
  func changedFiles(app: String, from: Int?, to: Int) async throws -> [FileChange]
  /// The newest `limit` audit entries (of one app if given), oldest first.
  func audit(app: String?, limit: Int) async throws -> [AuditEntry]

  // MARK: Content

  /// Streams a stored blob's bytes through `body`, a chunk at a time.
  func readBlob(_ digest: SHA256Hex, _ body: (UnsafeRawBufferPointer) throws -> Void) async throws
  /// The digests among `digests` the store does not hold.
  func missingBlobs(_ digests: [SHA256Hex]) async throws -> Set<SHA256Hex>
  /// The blobs of `tree`'s files the store does not hold, in ascending order, each once. A store
  /// that keeps folders looks up only the files of folders it does not hold: a stored folder's
  /// blobs are stored.
  ///
  /// A list, not a set: a set of the 100,000 digests of a first push took 12 MB as it grew, the
  /// list 3.2 MB.
  func missingBlobs(inTree tree: VersionTree) async throws -> [SHA256Hex]
  /// Stores the content of each file as a blob, unless it is stored already.
  ///
  /// Each file is read as it is stored and must still have the digest and size it is listed with. A
  /// store may keep a blob as a delta against the stored blob it names as `similar`.
  /// Stored blobs stay unreferenced until a change uses them; `collectGarbage` spares them for its
  /// grace period, so a change in flight in another process keeps them. They are sure to survive a
  /// power cut only once a change applied after them is committed.
  ///
  /// - Throws: `.conflict` when a file's content is no longer what was listed.
  func storeBlobs(_ blobs: [BlobFile]) async throws

  // MARK: Changing

  /// Makes one change, whole or not at all, with its audit entry.
  ///
  /// - Returns: the version the change added or moved a head to, if any.
  /// - Throws: `.conflict` when a head is not the one the change names, or a name is taken;
  ///   `.notFound` when the app, environment or a version is missing.
  @discardableResult
  func apply(_ change: StoreChange) async throws -> Version?

  // MARK: Upkeep

  func check() async throws -> CheckReport
  /// Removes blobs no version refers to that were stored more than `grace` ago; returns how many.
  func collectGarbage(grace: TimeInterval) async throws -> Int
  /// A folder on this machine where an import may stage what it reads before anything is stored.
  var stagingFolder: String { get }

  /// Whether the store keeps blobs as deltas against the `similar` blob a `BlobFile` names, so that
  /// finding one is worth a read of the head.
  var storesDeltas: Bool { get }
  /// The files directly in each of `folders` ("" for the top, no subfolders) of version `number`.
  ///
  /// - Throws: `.notFound` for a missing app or version.
  func files(app: String, number: Int, inFolders folders: Set<String>) async throws -> [ManifestFile]
  /// The whole contents of the blobs `digests` name, in order, read together: nil for a blob the caller
  /// should stream with `readBlob` instead (one stored in several chunks). Callers ask for blobs small
  /// enough to hold together (see `forEachBlob`).
  ///
  /// - Throws: `.internal` for a blob missing or damaged in the store.
  func readBlobs(_ digests: [SHA256Hex]) async throws -> [Data?]
}

extension VersionStore {
  public var storesDeltas: Bool { false }

  public func missingBlobs(inTree tree: VersionTree) async throws -> [SHA256Hex] {
    try await missingBlobs(tree.files.map(\.sha256)).sorted()
  }

  public func files(app: String, number: Int, inFolders folders: Set<String>) async throws -> [ManifestFile] {
    try await files(app: app, number: number).filter { file in
      folders.contains(EntryPath.folder(of: file.path))
    }
  }

  public func readBlobs(_ digests: [SHA256Hex]) async throws -> [Data?] {
    var contents: [Data?] = []
    for digest in digests {
      var data = Data()
      try await readBlob(digest) { data.append(contentsOf: $0) }
      contents.append(data)
    }
    return contents
  }
}

/// Content to be stored as a blob: `size` bytes at `offset` of a file on this machine.
public struct BlobFile: Sendable, Hashable {
  public var sha256: SHA256Hex
  public var size: Int64
  public var path: String
  public var offset: Int64
  /// A stored blob this content most likely resembles: the one at the same path in the version it
  /// replaces. Only a hint for a compact store; nil when there is none.
  public var similar: SHA256Hex?

  public init(sha256: SHA256Hex, size: Int64, path: String, offset: Int64 = 0, similar: SHA256Hex? = nil) {
    self.sha256 = sha256
    self.size = size
    self.path = path
    self.offset = offset
    self.similar = similar
  }

  /// Streams the blob's bytes through `body`, and checks that they still have its size and digest.
  ///
  /// - Throws: `.conflict` when the content is no longer what was listed; `SystemError` when it cannot be read.
  public func stream(buffer: UnsafeMutableRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
    let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
    guard fd >= 0 else { throw SystemError(.open, path) }
    defer { close(fd) }
    var hasher = SHA256Stream()
    var done: Int64 = 0
    while done < size {
      let count = pread(fd, buffer.baseAddress, Int(min(Int64(buffer.count), size - done)), off_t(offset + done))
      if count < 0 {
        if errno == EINTR { continue }
        throw SystemError(.read, path)
      }
      if count == 0 { break }
      let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
      hasher.update(chunk)
      try body(chunk)
      done += Int64(count)
    }
    guard done == size, hasher.finalize() == sha256 else {
      throw OperationError(.conflict, "`\(path)` changed while it was being stored; nothing was changed, try again")
    }
  }
}

/// One change to a store, as `VersionStore.apply` takes it: what to do, and who does it when.
public struct StoreChange: Sendable {
  public enum Operation: Sendable {
    case createApp(name: String, environments: [String], production: String?)
    case createEnvironment(app: String, name: String, production: Bool)
    /// Makes `name` the app's production environment; the one that was production no longer is.
    case setProduction(app: String, name: String)
    /// Deletes an environment whose head is `expectedHead`; its versions stay in the history.
    case deleteEnvironment(app: String, name: String, expectedHead: Int?)
    /// Adds a version with the next number and makes it its environment's head, if that head is still
    /// `expectedHead` (nil: the environment has none). Every blob must be stored.
    case addVersion(VersionDraft, expectedHead: Int?)
    /// Makes `number` the head of `environment` if its head is still `expectedHead`, pins the version
    /// and the head it replaces, and sets its synced-at when `environment` is production.
    case sync(app: String, environment: String, number: Int, expectedHead: Int?)
    /// An audit entry alone: an export, a backup run.
    case note(app: String, environment: String?, action: AuditAction, version: Int?)

    // A store copy writes history as another store has it (see `StoreCopy`): each of these keeps
    // the times, authors and numbers it is given, and adds no audit entry of its own.

    /// Adds the app `name`, made at `createdAt`, with no environment yet.
    case copyApp(name: String, createdAt: Date)
    /// Adds each version of `app` with its own number and every field it has, its tree made of its
    /// files (whose digest must be the version's), in the order given; the app's next number stays
    /// above them. Every blob must be stored.
    case copyVersions(app: String, [VersionCopy])
    /// Adds `environment` to `app`: production or not, its head (a version copied first), its created-at.
    case copyEnvironment(app: String, EnvironmentInfo)
    /// Appends `entries` of `app`'s audit log with their own ids, times, authors and words.
    case copyAudit(app: String, entries: [AuditEntry])
  }

  public var operation: Operation
  public var author: String
  /// When the change is made; also the created-at of a version it adds.
  public var at: Date
  /// The audit entry's words.
  public var detail: String
  public var archiveSHA256: SHA256Hex?

  public init(
    _ operation: Operation, author: String, at: Date, detail: String, archiveSHA256: SHA256Hex? = nil
  ) {
    self.operation = operation
    self.author = author
    self.at = at
    self.detail = detail
    self.archiveSHA256 = archiveSHA256
  }

  /// The app the change is to.
  public var app: String {
    switch operation {
    case .createApp(let name, _, _): return name
    case .createEnvironment(let app, _, _), .setProduction(let app, _), .deleteEnvironment(let app, _, _),
      .sync(let app, _, _, _), .note(let app, _, _, _):
      return app
    case .addVersion(let draft, _): return draft.app
    case .copyApp(let name, _): return name
    case .copyVersions(let app, _), .copyEnvironment(let app, _), .copyAudit(let app, _): return app
    }
  }
}

/// One file that differs between two trees.
public struct FileChange: Sendable, Equatable, Codable {
  public enum Kind: String, Sendable, Codable {
    case added, removed, modified, modeChanged = "mode-changed"
  }

  public var path: String
  /// The file before and after, side by side and without their paths: theirs is `path`.
  ///
  /// A first push of 100,000 files lists every one as added, and with two whole file records each
  /// (each a path, a size, a mode and a digest) that list was half as large again.
  private var sides: Sides
  // After `sides`, so that it takes a byte of their last word's padding.
  public var kind: Kind

  private struct Sides: Sendable, Equatable {
    var oldDigest = SHA256Hex.zero
    var newDigest = SHA256Hex.zero
    var oldSize: Int64 = 0
    var newSize: Int64 = 0
    /// nil where there is no file on that side.
    var oldMode: FileMode?
    var newMode: FileMode?
  }

  /// The file before the change; nil for an added file. Its path is the change's.
  public var old: ManifestFile? {
    get { sides.oldMode.map { ManifestFile(path: path, size: sides.oldSize, mode: $0, sha256: sides.oldDigest) } }
    set {
      sides.oldMode = newValue?.mode
      (sides.oldSize, sides.oldDigest) = newValue.map { ($0.size, $0.sha256) } ?? (0, .zero)
    }
  }

  /// The file after the change; nil for a removed file. Its path is the change's.
  public var new: ManifestFile? {
    get { sides.newMode.map { ManifestFile(path: path, size: sides.newSize, mode: $0, sha256: sides.newDigest) } }
    set {
      sides.newMode = newValue?.mode
      (sides.newSize, sides.newDigest) = newValue.map { ($0.size, $0.sha256) } ?? (0, .zero)
    }
  }

  /// A change at `path`; the paths `old` and `new` give are not kept, theirs is `path`.
  public init(path: String, kind: Kind, old: ManifestFile?, new: ManifestFile?) {
    self.path = path
    self.kind = kind
    sides = Sides()
    self.old = old
    self.new = new
  }

  /// The change from `old` to `new` at one path, or nil when both are the same file.
  public init?(path: String, old: ManifestFile?, new: ManifestFile?) {
    switch (old, new) {
    case (nil, nil):
      return nil
    case (let old?, nil):
      self.init(path: path, kind: .removed, old: old, new: nil)
    case (nil, let new?):
      self.init(path: path, kind: .added, old: nil, new: new)
    case (let old?, let new?):
      if old.sha256 != new.sha256 {
        self.init(path: path, kind: .modified, old: old, new: new)
      } else if old.mode != new.mode {
        self.init(path: path, kind: .modeChanged, old: old, new: new)
      } else {
        return nil
      }
    }
  }

  private enum CodingKeys: String, CodingKey { case path, kind, old, new }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    self.init(
      path: try container.decode(String.self, forKey: .path), kind: try container.decode(Kind.self, forKey: .kind),
      old: try container.decodeIfPresent(ManifestFile.self, forKey: .old),
      new: try container.decodeIfPresent(ManifestFile.self, forKey: .new))
  }

  /// Both sides always, `null` where there is no file.
  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(path, forKey: .path)
    try container.encode(kind, forKey: .kind)
    try container.encode(ExplicitNull(wrappedValue: old), forKey: .old)
    try container.encode(ExplicitNull(wrappedValue: new), forKey: .new)
  }

  /// The changes from `old` to `new`, two flat file lists (for trees not in the store, such as an archive).
  public static func between(old: [ManifestFile], new: [ManifestFile]) -> [FileChange] {
    let before = Dictionary(old.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
    let after = Dictionary(new.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
    return Set(before.keys).union(after.keys)
      .compactMap { FileChange(path: $0, old: before[$0], new: after[$0]) }
      .sorted { EntryPath.byteOrder($0.path, $1.path) }
  }
}
