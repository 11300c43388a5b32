import Foundation

/// An advisory lock on a file in a folder, held for one run; the kernel drops it when the process dies,
/// so a killed run never blocks the next one.
public final class FolderLock {
  private let fd: Int32

  /// Takes the lock on `folder/name`, waiting up to `wait` seconds for another holder.
  ///
  /// - Throws: `OperationError` of kind `.temporaryFailure` when another process holds it past `wait`.
  public init(folder: String, name: String, wait: TimeInterval) throws {
    let path = folder + "/" + name
    let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw SystemError(.create, path) }
    let deadline = Date().addingTimeInterval(wait)
    while flock(fd, LOCK_EX | LOCK_NB) != 0 {
      let code = errno
      guard code == EWOULDBLOCK || code == EINTR else {
        close(fd)
        throw SystemError(.lock, path, code: code)
      }
      if Date() >= deadline {
        close(fd)
        throw OperationError(
          .temporaryFailure,
          "another backup is running into `\(folder)` (it holds `\(name)`)", hint: .waitForLock)
      }
      usleep(100_000)
    }
    self.fd = fd
  }

  deinit {
    flock(fd, LOCK_UN)
    close(fd)
  }
}
