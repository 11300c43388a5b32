import Foundation
import Logging

/// What a checked-out folder was written from, kept in the folder (`.confvault/checkout.json`) so
/// that a later push or status can tell when the environment's head has moved past it.
///
/// It is never pushed, whatever the ignore rules say.
public struct CheckoutRecord: Sendable, Codable, Equatable {
  static let folderName = ".confvault"
  static let fileName = "checkout.json"
  /// Where the record is, relative to the folder's root.
  public static let relativePath = folderName + "/" + fileName

  public var app: String
  public var environment: String
  /// The version the folder holds.
  public var version: Int
  public var treeDigest: TreeDigest
  /// The store it came from, as the front end names it (a folder's absolute path, a database URL):
  /// version numbers of another store say nothing about this one's heads.
  public var store: String

  public init(app: String, environment: String, version: Int, treeDigest: TreeDigest, store: String) {
    self.app = app
    self.environment = environment
    self.version = version
    self.treeDigest = treeDigest
    self.store = store
  }

  init(_ version: Version, environment: String, store: String) {
    self.init(
      app: version.app, environment: environment, version: version.number, treeDigest: version.treeDigest,
      store: store)
  }

  /// Whether the record speaks of `environment` of `app` in `store`.
  func names(app: String, environment: String, store: String) -> Bool {
    self.app == app && self.environment == environment && self.store == store
  }

  /// The record in `folder`; nil when there is none. A record that cannot be read is reported and
  /// passed over: a folder edited by hand stays usable.
  static func read(from folder: String, logger: Logger) -> CheckoutRecord? {
    let path = folder + "/" + relativePath
    var info = stat()
    guard lstat(path, &info) == 0 else { return nil }
    guard info.st_mode & S_IFMT == S_IFREG, info.st_size <= 64 << 10,
      let data = FileManager.default.contents(atPath: path),
      let record = try? JSONCoding.decoder().decode(CheckoutRecord.self, from: data)
    else {
      logger.warning("`\(path)` is not a checkout record confvault can read; it is passed over")
      return nil
    }
    return record
  }

  /// The record as a file's bytes.
  func encoded() throws -> Data {
    try JSONCoding.encoder().encode(self) + Data("\n".utf8)
  }

  /// Writes the record into a folder being made (`.confvault` must not exist yet), flushed.
  func create(in folder: String) throws {
    let directory = folder + "/" + Self.folderName
    guard mkdir(directory, 0o755) == 0 else { throw SystemError(.create, directory) }
    let path = directory + "/" + Self.fileName
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw SystemError(.create, path) }
    defer { close(fd) }
    try encoded().withUnsafeBytes { try FileDescriptorSink(fd: fd, name: path).write($0) }
    guard fsync(fd) == 0 else { throw SystemError(.sync, path) }
  }

  /// Replaces the record in `folder`, atomically.
  func replace(in folder: String) throws {
    let file = try AtomicFile(path: folder + "/" + Self.relativePath, replaceExisting: true)
    try encoded().withUnsafeBytes { try FileDescriptorSink(fd: file.fileDescriptor, name: file.path).write($0) }
    try file.commit()
  }
}
