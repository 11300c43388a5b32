import Foundation

/// A folder that appears at its final name complete or not at all.
///
/// Files go into a hidden folder beside the target; `commit()` flushes them and renames the folder
/// into place. An existing empty target is replaced; a non-empty one is refused before anything is
/// written.
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
    stagingPath = parent + "/." + name + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    guard mkdir(stagingPath, 0o755) == 0 else { throw SystemError(.create, normalized) }
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
    syncFolder(splitPath(path).folder)
  }

  /// Removes the staging folder and everything in it.
  public func discard() {
    finished = true
    try? FileManager.default.removeItem(atPath: stagingPath)
  }
}

/// Writes the files of a streaming archive under a folder, creating subfolders as needed.
///
/// Paths reach it already checked (relative, no `..`, no symlinks ever created), so a file can only
/// land inside `root`; files are opened with `O_EXCL | O_NOFOLLOW` all the same.
public final class FolderWritingSink: ArchiveFileSink {
  private let root: String
  private var madeFolders: Set<String> = [""]
  private var fd: Int32 = -1
  private var current = ""

  public init(root: String) { self.root = root }

  deinit { if fd >= 0 { close(fd) } }

  public func beginFile(path: String, mode: FileMode) throws {
    try makeFolders(for: path)
    current = root + "/" + path
    fd = open(current, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw refusalOrFailure(.create, path: path) }
    guard fchmod(fd, mode_t(mode.permissions)) == 0 else { throw SystemError(.create, current) }
  }

  public func write(_ bytes: UnsafeRawBufferPointer) throws {
    var offset = 0
    while offset < bytes.count {
      let written = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
      if written < 0 {
        if errno == EINTR { continue }
        throw SystemError(.write, current)
      }
      offset += written
    }
  }

  public func endFile(_ file: ManifestFile) throws {
    // Flushed before the folder is renamed into place, so a crash cannot leave empty files under the final name.
    guard fsync(fd) == 0 else { throw SystemError(.sync, current) }
    let result = close(fd)
    fd = -1
    guard result == 0 else { throw SystemError(.write, current) }
  }

  private func makeFolders(for path: String) throws {
    guard let slash = path.lastIndex(of: "/") else { return }
    let folder = String(path[..<slash])
    guard !madeFolders.contains(folder) else { return }
    try makeFolders(for: folder)
    let absolute = root + "/" + folder
    if mkdir(absolute, 0o755) != 0 && errno != EEXIST { throw refusalOrFailure(.create, path: folder) }
    madeFolders.insert(folder)
  }

  /// A name taken already by a file where a folder goes (or the reverse) is the archive's fault, not the disk's.
  private func refusalOrFailure(_ operation: SystemError.Operation, path: String) -> any Error {
    let code = errno
    if code == EEXIST || code == ENOTDIR || code == EISDIR {
      return ArchiveRefusal(entry: path, rule: .fileAndFolder)
    }
    return SystemError(operation, root + "/" + path, code: code)
  }
}

extension ConfigurationArchive {
  /// Checks an archive in full and extracts its configuration into a new folder, atomically.
  ///
  /// - Throws: `ArchiveRefusal` for a bad archive (nothing is left behind), `OperationError` when
  ///   `folder` exists and is not empty, `SystemError` for I/O failures.
  public static func unpack(
    _ source: ArchiveSource, to folder: String, reader: ArchiveReader = ArchiveReader()
  ) throws -> ArchiveContents {
    let target = try AtomicFolder(path: folder)
    let contents = try reader.read(from: source, into: FolderWritingSink(root: target.stagingPath))
    if let stripped = contents.strippedFolder {
      // A plain archive's files were written under their top folder; lift them out of it. The folder
      // is renamed first, as it may hold an entry of its own name.
      let inner = target.stagingPath + "/.top-\(UInt32.random(in: 0...UInt32.max))"
      guard rename(target.stagingPath + "/" + stripped, inner) == 0 else {
        throw SystemError(.rename, folder + "/" + stripped)
      }
      for name in try FileManager.default.contentsOfDirectory(atPath: inner) {
        guard rename(inner + "/" + name, target.stagingPath + "/" + name) == 0 else {
          throw SystemError(.rename, folder + "/" + name)
        }
      }
      rmdir(inner)
    }
    try target.commit()
    return contents
  }
}
