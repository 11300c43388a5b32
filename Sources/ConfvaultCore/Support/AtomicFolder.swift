import Foundation

/// A folder that appears at its final name complete or not at all.
///
/// Files go into a hidden folder beside the target; `commit()` flushes them and renames the folder
/// into place. An existing empty target is replaced; a non-empty one is refused before anything is
/// written. Like `AtomicFile`'s, the hidden folder is removed on SIGINT and SIGTERM, and one a killed
/// process left is removed by the next `AtomicFile` or `AtomicFolder` made beside it.
public final class AtomicFolder {
  public let path: String
  /// Where files go until `commit()`.
  public let stagingPath: String
  private var finished = false

  /// - Throws: `OperationError` when `path` exists and is not an empty folder; `SystemError` when
  ///   the staging folder cannot be made.
  public init(path: String) throws {
    var normalized = path
    while normalized.count > 1 && normalized.hasSuffix("/") { normalized.removeLast() }
    self.path = normalized
    try AtomicFolder.checkTarget(normalized)
    let (parent, name) = splitPath(normalized)
    TemporaryFiles.removeStale(in: parent)
    let stagingPath = parent + "/" + TemporaryFiles.hiddenName(for: name)
    self.stagingPath = stagingPath
    try TemporaryFiles.make(stagingPath) {
      guard mkdir(stagingPath, 0o755) == 0 else { throw SystemError(.create, normalized) }
    }
  }

  deinit {
    if !finished { discard() }
  }

  private static func checkTarget(_ path: String) throws {
    var info = stat()
    guard lstat(path, &info) == 0 else { return }
    guard info.st_mode & S_IFMT == S_IFDIR else {
      throw OperationError(.cannotCreateOutput, "`\(path)` exists and is not a folder; nothing was written")
    }
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? ["?"]
    guard entries.isEmpty else {
      throw OperationError(
        .cannotCreateOutput, "`\(path)` exists and is not empty; name a new folder (nothing was written)")
    }
  }

  /// Flushes every folder to disk and renames the staging folder to the target.
  ///
  /// Files were flushed as they were written; the folders' entries are flushed here, so that after a
  /// power cut the renamed folder holds every file.
  public func commit() throws {
    precondition(!finished, "AtomicFolder committed twice")
    let subfolders = FileManager.default.enumerator(atPath: stagingPath)?.compactMap { item -> String? in
      let full = stagingPath + "/" + (item as! String)
      var info = stat()
      return lstat(full, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR ? full : nil
    }
    for folder in (subfolders ?? []).reversed() + [stagingPath] { syncFolder(folder) }
    try AtomicFolder.checkTarget(path)
    var info = stat()
    if lstat(path, &info) == 0 { rmdir(path) }
    guard rename(stagingPath, path) == 0 else {
      let error = SystemError(.rename, path)
      discard()
      throw error
    }
    finished = true
    TemporaryFiles.forget(stagingPath)
    syncFolder(splitPath(path).folder)
  }

  /// Removes the staging folder and everything in it.
  public func discard() {
    finished = true
    try? FileManager.default.removeItem(atPath: stagingPath)
    TemporaryFiles.forget(stagingPath)
  }
}

/// `mkdir -p`, with the failing folder and errno in the error.
func makeFolders(_ path: String) throws {
  var info = stat()
  if stat(path, &info) == 0 {
    guard info.st_mode & S_IFMT == S_IFDIR else { throw SystemError(.create, path, code: ENOTDIR) }
    return
  }
  let parent = splitPath(path).folder
  if parent != path && parent != "." && parent != "/" { try makeFolders(parent) }
  guard mkdir(path, 0o755) == 0 || errno == EEXIST else { throw SystemError(.create, path) }
}
