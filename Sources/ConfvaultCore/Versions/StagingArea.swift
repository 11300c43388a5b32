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
  /// The contents staged so far, in the order they were staged, and where each is in the spool.
  private var digests: [SHA256Hex] = []
  private var places: [(offset: Int64, size: Int64)] = []
  /// Each content's index in `digests`, by its digest's first 8 bytes: 12 bytes a slot, where a
  /// dictionary by whole digest to place took 48 (100,000 contents: 3.1 MB against 12.6).
  private var byPrefix: [UInt64: Int32] = [:]
  /// The contents whose first 8 bytes are an earlier one's, by whole digest: none but by chance, or
  /// in an archive made to have them.
  private var sharingPrefix: [SHA256Hex: Int32] = [:]

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
      let place = places[index(of: digest)!]
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

  /// Notes that the content of `file` is at `offset` in the spool, unless a content with its digest
  /// is staged already; returns whether it was new.
  func record(_ file: ManifestFile, offset: Int64) -> Bool {
    lock.withLock {
      guard index(of: file.sha256) == nil else { return false }
      precondition(digests.count < Int32.max, "more contents staged than an import takes")
      let index = Int32(digests.count)
      digests.append(file.sha256)
      places.append((offset, file.size))
      if byPrefix[file.sha256.prefix] == nil {
        byPrefix[file.sha256.prefix] = index
      } else {
        sharingPrefix[file.sha256] = index
      }
      return true
    }
  }

  /// Where `digest` is in `digests`, if it was staged; under `lock`.
  private func index(of digest: SHA256Hex) -> Int? {
    guard let first = byPrefix[digest.prefix] else { return nil }
    return digests[Int(first)] == digest ? Int(first) : sharingPrefix[digest].map(Int.init)
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
