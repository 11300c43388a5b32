import Foundation

/// Writes the files of a streaming archive under a folder, creating subfolders as needed.
///
/// Paths reach it already checked (relative, no `..`, no symlinks ever created), so a file can only
/// land inside `root`; files are opened with `O_EXCL | O_NOFOLLOW` all the same. Nothing is flushed to
/// disk here: `root` is an `AtomicFolder`'s staging folder, which its `commit()` flushes in one step.
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
    try FileDescriptorSink(fd: fd, name: current).write(bytes)
  }

  public func endFile(_ file: ManifestFile) throws {
    // Not flushed here: `AtomicFolder.commit()` flushes every file at once before the folder is
    // renamed into place, so a crash cannot leave empty files under the final name.
    let result = close(fd)
    fd = -1
    guard result == 0 else { throw SystemError(.write, current) }
  }

  private func makeFolders(for path: String) throws {
    // Split at the `/` bytes, as the file system does: a `/` that a combining mark follows is one
    // character with it, but still separates two names on disk.
    guard let slash = path.utf8.lastIndex(of: 0x2F) else { return }
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
