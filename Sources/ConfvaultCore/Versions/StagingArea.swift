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
  /// The contents staged so far, in the order they were staged, in chunks of `chunkSize`: the list
  /// grows by a chunk, so nothing is copied as it grows, and no more than a chunk is ever unused.
  /// Grown by doubling, separate lists of the digests and their places held up to twice what they
  /// used, 6.3 MiB for 100,000 contents.
  private var chunks: [[Staged]] = []
  private var count = 0
  private static let chunkSize = 4096
  /// Where each content is in `chunks`, found by its digest: a table of their indices plus one (0
  /// for a free slot), probed in turn from the slot of the digest's first 8 bytes, never more than
  /// half full. 4 bytes a slot: a dictionary by those bytes took 12, and the digests besides it 32.
  ///
  /// Its slots come from Swift's `Hasher`, seeded anew in each process: an archive made so that its
  /// digests fill one run of slots cannot be made without knowing the seed.
  private var slots = [UInt32](repeating: 0, count: 1024)

  /// A staged content: its digest and where it is in the spool.
  private struct Staged {
    var digest: SHA256Hex
    var offset: Int64
    var size: Int64
  }

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
      guard case .found(let index) = slot(of: digest) else { preconditionFailure("\(digest) was not staged") }
      let staged = self[index]
      return BlobFile(sha256: digest, size: staged.size, path: spool, offset: staged.offset)
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
      guard case .free(let slot) = slot(of: file.sha256) else { return false }
      precondition(count < Int(UInt32.max) / 2, "more contents staged than an import takes")
      if chunks.last.map({ $0.count == Self.chunkSize }) ?? true { chunks.append([]) }
      chunks[chunks.count - 1].append(Staged(digest: file.sha256, offset: offset, size: file.size))
      count += 1
      slots[slot] = UInt32(count)
      if count * 2 > slots.count { grow() }
      return true
    }
  }

  /// The staged content at `index`; under `lock`.
  private subscript(index: Int) -> Staged { chunks[index / Self.chunkSize][index % Self.chunkSize] }

  private enum Slot {
    /// The content is staged, at this index.
    case found(Int)
    /// It is not; this free slot is where it goes.
    case free(Int)
  }

  /// Where `digest` is in `slots`, or the free slot it would take; under `lock`.
  private func slot(of digest: SHA256Hex) -> Slot {
    let mask = slots.count - 1
    var slot = Self.firstSlot(digest, mask: mask)
    // The table is never more than half full: a free slot comes.
    while slots[slot] != 0 {
      let index = Int(slots[slot]) - 1
      if self[index].digest == digest { return .found(index) }
      slot = (slot + 1) & mask
    }
    return .free(slot)
  }

  private static func firstSlot(_ digest: SHA256Hex, mask: Int) -> Int {
    var hasher = Hasher()
    hasher.combine(digest.prefix)
    return hasher.finalize() & mask
  }

  /// Doubles the table, each content put where it would go in the larger one; under `lock`.
  private func grow() {
    slots = [UInt32](repeating: 0, count: slots.count * 2)
    let mask = slots.count - 1
    for index in 0..<count {
      var slot = Self.firstSlot(self[index].digest, mask: mask)
      while slots[slot] != 0 { slot = (slot + 1) & mask }
      slots[slot] = UInt32(index + 1)
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
