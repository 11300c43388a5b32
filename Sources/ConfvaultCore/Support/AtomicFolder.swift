import Foundation

/// A folder that appears at its final name complete or not at all.
///
/// Files go into a hidden folder beside the target; `commit()` makes them durable and renames the
/// folder into place. An existing empty target is replaced; a non-empty one is refused before anything
/// is written. Like `AtomicFile`'s, the hidden folder is removed on SIGINT and SIGTERM, and one a killed
/// process left is removed by the next `AtomicFile` or `AtomicFolder` made beside it.
///
/// Writers need not flush the files they write into `stagingPath`: `commit()` flushes them all in one
/// step, as one flush per file costs a journal commit (a disk round trip) each.
public final class AtomicFolder {
  public let path: String
  /// Where files go until `commit()`.
  public let stagingPath: String
  /// The staging folder, open from before the first file is written: `syncfs` on it reports a
  /// write-back error of the file system since then (Linux 5.8 and later), not only the flush's own.
  private let stagingDescriptor: Int32
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
    stagingDescriptor = open(stagingPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard stagingDescriptor >= 0 else {
      let error = SystemError(.open, stagingPath)
      try? FileManager.default.removeItem(atPath: stagingPath)
      TemporaryFiles.forget(stagingPath)
      finished = true
      throw error
    }
  }

  deinit {
    if !finished { discard() }
    close(stagingDescriptor)
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

  /// Makes everything in the staging folder durable, then renames it to the target.
  ///
  /// One `syncfs` on the staging folder's file system writes back every file and folder written into
  /// it and commits the journal once, so after a power cut the renamed folder holds every file in
  /// full. Where `syncfs` fails, each file and folder is flushed on its own instead.
  ///
  /// - Throws: `SystemError` when the content cannot be flushed or the folder cannot be moved into
  ///   place (the staging folder is then removed); `OperationError` when the target was taken meanwhile.
  public func commit() throws {
    precondition(!finished, "AtomicFolder committed twice")
    do {
      if syncFileSystem?(stagingDescriptor) != 0 {
        let code = syncFileSystem == nil ? ENOSYS : errno
        // EIO or ENOSPC is a write-back that failed: what was written is not on disk. Anything else
        // (ENOSYS under some sandboxes) only means this call is not to be had.
        if code == EIO || code == ENOSPC || code == EDQUOT { throw SystemError(.sync, path, code: code) }
        try syncEachEntry()
      }
      try AtomicFolder.checkTarget(path)
    } catch {
      discard()
      throw error
    }
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

  /// Flushes every file and folder below the staging folder, deepest first: the slow way, one disk
  /// round trip each, for file systems without `syncfs`.
  private func syncEachEntry() throws {
    var entries: [String] = []
    if let enumerator = FileManager.default.enumerator(atPath: stagingPath) {
      for case let item as String in enumerator { entries.append(stagingPath + "/" + item) }
    }
    for entry in entries.reversed() + [stagingPath] {
      let fd = open(entry, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
      guard fd >= 0 else { throw SystemError(.open, entry) }
      defer { close(fd) }
      var info = stat()
      let isFolder = fstat(fd, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
      // Some file systems refuse to flush a folder; its files are what must not be lost.
      if fsync(fd) != 0 && !isFolder { throw SystemError(.sync, entry) }
    }
  }

  /// Removes the staging folder and everything in it.
  public func discard() {
    finished = true
    try? FileManager.default.removeItem(atPath: stagingPath)
    TemporaryFiles.forget(stagingPath)
  }
}

/// `syncfs(2)`: glibc declares it for `_GNU_SOURCE` only, so Swift's Glibc module leaves it out.
private let syncFileSystem: (@convention(c) (Int32) -> Int32)? = {
  guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "syncfs") else { return nil }
  return unsafeBitCast(symbol, to: (@convention(c) (Int32) -> Int32).self)
}()

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
