import Foundation

/// A private place where an import puts what it reads, before the store holds any of it.
///
/// Every file's content is appended to one spool file, once per distinct content, so staging costs
/// one sequential write instead of a file per entry, and the store is later handed each new blob once.
/// It lives in `<store's staging folder>/<pid>-<random>/`; it is removed when the import ends or is
/// stopped by SIGINT or SIGTERM (`TemporaryFiles`), and if the process is killed outright,
/// `Vault.collectGarbage` removes it once no process of that id runs. It is never part of the store:
/// `check` does not look at it.
final class StagingArea: @unchecked Sendable {
  let path: String
  let spool: String
  private let lock = NSLock()
  /// Where in the spool each content staged so far is (kept small: 100,000 files stage 100,000).
  private var staged: [SHA256Hex: (offset: Int64, size: Int64)] = [:]

  /// Makes a new staging folder in `parent`.
  init(in parent: String) throws {
    try makeFolders(parent)
    let path = parent + "/\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    self.path = path
    spool = path + "/spool"
    try TemporaryFiles.make(path) {
      guard mkdir(path, 0o700) == 0 else { throw SystemError(.create, path) }
    }
  }

  deinit { remove() }

  /// Where the staged content of `digest` is.
  func blob(_ digest: SHA256Hex) -> BlobFile {
    lock.withLock {
      let place = staged[digest]!
      return BlobFile(sha256: digest, size: place.size, path: spool, offset: place.offset)
    }
  }

  func remove() {
    try? FileManager.default.removeItem(atPath: path)
    TemporaryFiles.forget(path)
  }

  /// A sink that appends each file of an archive to the spool, keeping the first copy of each content.
  func sink() throws -> any ArchiveFileSink {
    let fd = open(spool, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw SystemError(.create, spool) }
    return StagingSink(area: self, fd: fd)
  }

  fileprivate func record(_ file: ManifestFile, offset: Int64) -> Bool {
    lock.withLock {
      guard staged[file.sha256] == nil else { return false }
      staged[file.sha256] = (offset, file.size)
      return true
    }
  }

  /// Removes what imports and server uploads left in `parent` for a process that is gone (staging
  /// folders `<pid>-…`, upload spools `upload-<pid>-…`); returns how many.
  static func removeAbandoned(in parent: String) -> Int {
    var removed = 0
    for name in (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? [] {
      let owner = name.hasPrefix("upload-") ? name.dropFirst(7) : Substring(name)
      guard let pid = owner.split(separator: "-").first.flatMap({ pid_t($0) }), pid > 0 else { continue }
      guard TemporaryFiles.processIsGone(pid) else { continue }
      if (try? FileManager.default.removeItem(atPath: parent + "/" + name)) != nil { removed += 1 }
    }
    return removed
  }
}

/// Appends each streamed file to the spool; a content staged already is cut off again.
private final class StagingSink: ArchiveFileSink {
  private let area: StagingArea
  private let output: FileDescriptorSink
  private var start: Int64 = 0
  private var end: Int64 = 0

  init(area: StagingArea, fd: Int32) {
    self.area = area
    output = FileDescriptorSink(fd: fd, name: area.spool)
  }

  deinit { close(output.fd) }

  func beginFile(path: String, mode: FileMode) throws {
    start = end
  }

  func write(_ bytes: UnsafeRawBufferPointer) throws {
    try output.write(bytes)
    end += Int64(bytes.count)
  }

  func endFile(_ file: ManifestFile) throws {
    // The spool needs no fsync: the store makes its own copy durable.
    guard !area.record(file, offset: start) else { return }
    guard ftruncate(output.fd, off_t(start)) == 0, lseek(output.fd, off_t(start), SEEK_SET) >= 0 else {
      throw SystemError(.write, area.spool)
    }
    end = start
  }
}
