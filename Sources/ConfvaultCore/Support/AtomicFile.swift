import Foundation

/// A file that appears at its final name complete or not at all.
///
/// Bytes go to a hidden temporary file in the same folder; `commit()` flushes it to disk, moves it
/// into place in one step and flushes the folder. Until then, and after any failure or crash,
/// nothing is at the final name. The temporary file is removed when the process is stopped by SIGINT
/// or SIGTERM (`TemporaryFiles`), and one left by a killed process is removed by the next `AtomicFile`
/// or `AtomicFolder` made in that folder.
public final class AtomicFile {
  public let path: String
  public let fileDescriptor: Int32
  private let temporaryPath: String
  private let replaceExisting: Bool
  private var finished = false

  /// Creates the temporary file for `path`.
  ///
  /// - Throws: `OperationError` when `path` exists and `replaceExisting` is false; `SystemError`
  ///   when the folder is missing or not writable.
  public init(path: String, replaceExisting: Bool, permissions: mode_t = 0o644) throws {
    self.path = path
    self.replaceExisting = replaceExisting
    var info = stat()
    if lstat(path, &info) == 0 {
      if info.st_mode & S_IFMT == S_IFDIR {
        throw OperationError(.cannotCreateOutput, "`\(path)` is a folder; name a file to write")
      }
      if !replaceExisting {
        throw OperationError(.cannotCreateOutput, "`\(path)` exists; nothing was written", hint: .replaceExisting)
      }
    }
    let (folder, name) = splitPath(path)
    TemporaryFiles.removeStale(in: folder)
    let temporaryPath = folder + "/" + TemporaryFiles.hiddenName(for: name)
    self.temporaryPath = temporaryPath
    fileDescriptor = try TemporaryFiles.make(temporaryPath) {
      let fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, permissions)
      guard fd >= 0 else { throw SystemError(.create, path) }
      return fd
    }
  }

  deinit {
    if !finished { discard() }
  }

  /// Flushes the bytes to disk and moves the file to its final name.
  public func commit() throws {
    precondition(!finished, "AtomicFile committed twice")
    finished = true
    do {
      guard fsync(fileDescriptor) == 0 else {
        let error = SystemError(.sync, path)
        close(fileDescriptor)
        throw error
      }
      guard close(fileDescriptor) == 0 else { throw SystemError(.write, path) }
      if replaceExisting {
        guard rename(temporaryPath, path) == 0 else { throw SystemError(.rename, path) }
      } else {
        // link() fails if the name was taken meanwhile, so a file another process wrote is never lost.
        if link(temporaryPath, path) == 0 {
          unlink(temporaryPath)
        } else {
          let code = errno
          if code == EEXIST {
            throw OperationError(.cannotCreateOutput, "`\(path)` appeared while writing; nothing was replaced")
          }
          // File systems without hard links (SMB shares, vfat): rename, after one last look for the name.
          guard code == EPERM || code == ENOTSUP || code == EOPNOTSUPP || code == EMLINK,
            access(path, F_OK) != 0, rename(temporaryPath, path) == 0
          else { throw SystemError(.rename, path, code: code) }
        }
      }
    } catch {
      unlink(temporaryPath)
      TemporaryFiles.forget(temporaryPath)
      throw error
    }
    TemporaryFiles.forget(temporaryPath)
    syncFolder(splitPath(path).folder)
  }

  /// Removes the temporary file; nothing is left behind.
  public func discard() {
    if !finished { close(fileDescriptor) }
    finished = true
    unlink(temporaryPath)
    TemporaryFiles.forget(temporaryPath)
  }
}

/// The folder and the last component of `path` (`.` for a bare name).
func splitPath(_ path: String) -> (folder: String, name: String) {
  guard let slash = path.lastIndex(of: "/") else { return (".", path) }
  let folder = String(path[..<slash])
  return (folder.isEmpty ? "/" : folder, String(path[path.index(after: slash)...]))
}

/// Flushes a folder's entries (a rename in it) to disk; best effort, as some file systems refuse it.
func syncFolder(_ folder: String) {
  let fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
  guard fd >= 0 else { return }
  fsync(fd)
  close(fd)
}
