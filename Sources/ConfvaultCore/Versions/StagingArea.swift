import Foundation

/// A private folder where an import puts what it reads, before the store holds any of it.
///
/// Each file is kept under its SHA-256, so the store is later handed each new blob once. It lives in
/// `<store's staging folder>/<pid>-<random>`; it is removed when the import ends, and if the process is
/// killed first, `Vault.collectGarbage` removes it once no process of that id runs. It is never part of
/// the store: `check` does not look at it.
final class StagingArea: @unchecked Sendable {
  let path: String

  /// Makes a new staging folder in `parent`.
  init(in parent: String) throws {
    try makeFolders(parent)
    path = parent + "/\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    guard mkdir(path, 0o700) == 0 else { throw SystemError(.create, path) }
  }

  deinit { remove() }

  /// Where the staged content of `digest` is.
  func file(_ digest: SHA256Hex) -> String { path + "/" + digest.value }

  func remove() {
    try? FileManager.default.removeItem(atPath: path)
  }

  /// A sink that stages each file of an archive under its digest.
  func sink() -> any ArchiveFileSink { StagingSink(area: self) }

  /// Removes the staging folders in `parent` whose process is gone; returns how many.
  static func removeAbandoned(in parent: String) -> Int {
    var removed = 0
    for name in (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? [] {
      guard let pid = name.split(separator: "-").first.flatMap({ pid_t($0) }), pid > 0 else { continue }
      if pid == getpid() || kill(pid, 0) == 0 || errno != ESRCH { continue }
      if (try? FileManager.default.removeItem(atPath: parent + "/" + name)) != nil { removed += 1 }
    }
    return removed
  }
}

/// Writes each streamed file to a temporary name in the staging folder, then renames it to its digest.
private final class StagingSink: ArchiveFileSink {
  private let area: StagingArea
  private let temporary: String
  private var fd: Int32 = -1

  init(area: StagingArea) {
    self.area = area
    temporary = area.path + "/.incoming"
  }

  deinit { if fd >= 0 { close(fd) } }

  func beginFile(path: String, mode: FileMode) throws {
    fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw SystemError(.create, temporary) }
  }

  func write(_ bytes: UnsafeRawBufferPointer) throws {
    try FileDescriptorSink(fd: fd, name: temporary).write(bytes)
  }

  func endFile(_ file: ManifestFile) throws {
    let result = close(fd)
    fd = -1
    guard result == 0 else { throw SystemError(.write, temporary) }
    // The same content twice is staged once; staged files need no fsync: the store makes its own copy durable.
    guard rename(temporary, area.file(file.sha256)) == 0 else { throw SystemError(.rename, area.file(file.sha256)) }
  }
}
