import Foundation
import Logging
import Synchronization

/// Where an archive is written: a file (atomically), standard output (`-o -`), or a stream of pieces
/// handed to the caller as they are made (a server's response body).
public enum ArchiveOutput: Sendable {
  case file(String, replaceExisting: Bool)
  case standardOutput
  /// Each piece of the archive, in order, about a file's worth at a time; named `name` in messages.
  case stream(name: String, piece: @Sendable (Data) async throws -> Void)

  public var displayName: String {
    switch self {
    case .file(let path, _): return path
    case .standardOutput: return "standard output"
    case .stream(let name, _): return name
    }
  }
}

/// What writing an archive produced.
public struct WrittenArchive: Sendable {
  public var manifest: Manifest
  /// The archive's size.
  public var bytes: Int64
  /// The SHA-256 of the archive's bytes, as written.
  public var sha256: SHA256Hex
}

/// Writes one Confvault archive: the manifest first, then each of its files under `config/`, in the
/// manifest's order, each checked against the manifest as it is written.
///
/// A file whose bytes differ from what the manifest says (changed since it was hashed, or a damaged
/// stored blob) stops the archive, instead of producing one that would fail verification.
public final class ConfigurationArchiveWriter {
  public let manifest: Manifest
  private let writer: ArchiveWriter
  private let modificationTime: Int64
  private var next = 0

  /// Starts the archive and writes its manifest.
  ///
  /// - Parameters:
  ///   - modificationTime: the mtime of every entry, in seconds since 1970.
  ///   - hashingOutput: whether the archive's own SHA-256 is computed, for `finish()` to return;
  ///     without it, the archive is ended with `close()`.
  public init(
    manifest: Manifest, modificationTime: Int64, compression: Compression, sink: any ArchiveByteSink,
    destination: String, logger: Logger? = nil, hashingOutput: Bool = true
  ) throws {
    self.manifest = manifest
    self.modificationTime = modificationTime
    writer = try ArchiveWriter(
      sink: sink, compression: compression, destination: destination, logger: logger, hashingOutput: hashingOutput)
    // Streamed: the size first, then the bytes, never the whole manifest in memory.
    let encoder = ManifestEncoder(manifest)
    try writer.beginFile(
      path: Manifest.entryName, size: Int64(encoder.byteCount()), mode: .regular, modificationTime: modificationTime)
    try encoder.write { try writer.writeData($0) }
    try writer.finishFile()
  }

  /// The manifest's next file, which the next `writeFile` call writes; nil when all are written.
  public var nextFile: ManifestFile? { next < manifest.files.count ? manifest.files[next] : nil }

  /// Writes the manifest's next file, whose bytes `content` streams through the closure it is handed.
  public func writeFile(content: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
    let file = try beginNextFile()
    var hasher = SHA256Stream()
    try content { chunk in
      hasher.update(chunk)
      try writer.writeData(chunk)
    }
    try finishFile(file, digest: hasher.finalize())
  }

  /// `writeFile` for content that arrives asynchronously (from a store).
  public func writeFile(content: ((UnsafeRawBufferPointer) throws -> Void) async throws -> Void) async throws {
    let file = try beginNextFile()
    var hasher = SHA256Stream()
    try await content { chunk in
      hasher.update(chunk)
      try writer.writeData(chunk)
    }
    try finishFile(file, digest: hasher.finalize())
  }

  /// Writes the manifest's next file from bytes that are known to match it, without hashing them again.
  ///
  /// For a caller that hashed these very bytes for the manifest, or read them from a file shown
  /// unchanged since by its status (`ConfigurationArchive.pack`); their size is still checked.
  func writeVouchedFile(content: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
    let file = try beginNextFile()
    try content { chunk in try writer.writeData(chunk) }
    try writer.finishFile()
    ProgressMeter.current?.add(files: 1, bytes: file.size)
  }

  /// Ends the archive and gives its size and SHA-256; it is complete only after this.
  public func finish() throws -> WrittenArchive {
    let bytes = try close()
    guard let hasher = writer.output.hasher else {
      preconditionFailure("finish() of a writer made without hashing its output; end it with close()")
    }
    return WrittenArchive(manifest: manifest, bytes: bytes, sha256: hasher.finalize())
  }

  /// Ends the archive and gives its size; it is complete only after this.
  public func close() throws -> Int64 {
    precondition(next == manifest.files.count, "an archive finished before all its files")
    try writer.close()
    return writer.output.bytes
  }

  private func beginNextFile() throws -> ManifestFile {
    guard let file = nextFile else { preconditionFailure("more files written than the manifest lists") }
    next += 1
    try writer.beginFile(
      path: Manifest.configPrefix + file.path, size: file.size, mode: file.mode, modificationTime: modificationTime)
    return file
  }

  private func finishFile(_ file: ManifestFile, digest: SHA256Hex) throws {
    guard digest == file.sha256 else {
      throw OperationError(
        .conflict,
        "`\(file.path)` changed while it was being archived (SHA-256 \(digest), expected \(file.sha256)); nothing was written"
      )
    }
    try writer.finishFile()
    ProgressMeter.current?.add(files: 1, bytes: file.size)
  }
}

/// Writes Confvault archives from content at hand.
public enum ConfigurationArchive {
  /// Streams an archive of `manifest`'s files to `output`, fetching each file's bytes through `content`.
  ///
  /// A file output is atomic: complete at its name, or absent.
  ///
  /// - Parameters:
  ///   - modificationTime: the mtime of every entry, in seconds since 1970.
  ///   - content: streams the bytes of one file through the closure it is given.
  public static func write(
    manifest: Manifest, modificationTime: Int64, compression: Compression, to output: ArchiveOutput,
    content: (ManifestFile, (UnsafeRawBufferPointer) throws -> Void) throws -> Void
  ) throws -> WrittenArchive {
    if case .stream = output {
      // A stream hands its pieces on asynchronously; `Vault.export` writes those.
      throw OperationError(.internal, "a streamed archive cannot be written synchronously")
    }
    let target = try OpenedOutput(output)
    let writer = try ConfigurationArchiveWriter(
      manifest: manifest, modificationTime: modificationTime, compression: compression, sink: target.sink,
      destination: output.displayName)
    while let file = writer.nextFile {
      try writer.writeFile { write in
        try withoutActuallyEscaping(write) { write in try content(file, write) }
      }
    }
    let written = try writer.finish()
    try target.commit()
    return written
  }

  /// Packs the configuration folder at `folder` into an archive.
  ///
  /// The entries' mtime is the newest file's, so packing an unchanged folder twice gives the same bytes.
  /// An uncompressed archive file is written in one read of each file (`packInOnePass`). Otherwise
  /// each file is read once for its digest (the manifest comes first, so every digest is needed before
  /// the first file is written) and once more to be written, unless it was small enough to be kept
  /// from the first read. What is written is the file as it was hashed, or the pack stops: its status
  /// (inode, size, mtime and ctime to the nanosecond) must not change during or between the reads,
  /// and a file changed within `racyWindow` of its first read is read and hashed again as it is
  /// written, as its status may not show a change made within the same timestamp.
  ///
  /// - Throws: `FolderRefusal` for symlinks and special files, `SystemError` for I/O failures,
  ///   `OperationError` when a file changes while it is packed.
  public static func pack(
    folder: String, app: String?, environment: String?, compression: Compression,
    to output: ArchiveOutput, limits: ArchiveLimits = .default
  ) throws -> PackedArchive {
    if case .stream = output {
      throw OperationError(.internal, "a streamed archive cannot be written synchronously")
    }
    // No ignore rules (a pack takes the folder as it is), but never a checkout's record of its origin.
    let found = try ConfigurationFolder.scan(folder, limits: limits, ignoring: .none).files
    let modificationTime = found.map(\.modificationTime).max() ?? 0
    if compression == .none, case .file = output {
      // A file can be written out of order: its manifest is mended once every file is read.
      return try packInOnePass(
        found, app: app, environment: environment, modificationTime: modificationTime, into: try OpenedOutput(output),
        destination: output.displayName)
    }
    // The scan's list becomes the read's: one list of the files, however many there are.
    let read = try FolderReading.read(consume found, keepingUpTo: FolderReading.keptBytesBudget)
    // The scan and the manifest both order files by path bytes, so `read[i]` is the manifest's file `i`.
    let manifest = Manifest(app: app, environment: environment, version: nil, files: read.entries)
    let target = try OpenedOutput(output)
    let writer = try ConfigurationArchiveWriter(
      manifest: manifest, modificationTime: modificationTime, compression: compression,
      sink: target.sink, destination: output.displayName, hashingOutput: false)
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    defer { buffer.deallocate() }
    for index in read.indices {
      let file = read[index]
      precondition(writer.nextFile?.path == file.entry.path, "the manifest's order is not the scan's")
      // A racy file is read again even when its bytes were kept: a change within its timestamp
      // during the first read would not show in its status.
      if file.isRacy {
        try writer.writeFile { write in
          try FolderReading.stream(read.files[index].absolutePath, as: file, buffer: buffer, write)
        }
      } else if read.keeps(index) {
        try writer.writeVouchedFile { write in try read.withKeptBytes(index, write) }
      } else {
        try writer.writeVouchedFile { write in
          try FolderReading.stream(read.files[index].absolutePath, as: file, buffer: buffer, write)
        }
      }
    }
    let bytes = try writer.close()
    try target.commit()
    return PackedArchive(manifest: manifest, bytes: bytes)
  }

  /// The manifest entries of `files`: their size and SHA-256 as read now, on both cores.
  public static func hash(_ files: [FolderFile]) throws -> [ManifestFile] {
    var entries = [ManifestFile](repeating: .unread, count: files.count)
    var kept = [Bool](repeating: false, count: files.count)
    try FolderReading.hash(files, at: Array(files.indices), into: &entries, kept: &kept)
    return entries
  }

  /// The manifest entries of `files`, reading only those whose status `cache` does not know; then
  /// `cache` knows what this read found.
  ///
  /// - Returns: the entries, and how many files were read.
  public static func hash(_ files: [FolderFile], cache: inout StatCache) throws -> (files: [ManifestFile], read: Int) {
    // Each file's entry, in order: a known file's from the cache, the others' as read. The cache keeps
    // the statuses the scan read, in `files` itself: a list of them beside it was 6 MiB of a
    // 100,000-file push's peak. A file is kept when its status is one the scan read and, if it was
    // read now, the read found that status and the file is not racy.
    var entries: [ManifestFile] = []
    entries.reserveCapacity(files.count)
    var kept = [Bool](repeating: false, count: files.count)
    var toRead: [Int] = []
    try cache.lookUp(files) { index, _, known in
      guard let known else {
        toRead.append(index)
        entries.append(.unread)
        return
      }
      entries.append(
        ManifestFile(path: files[index].path, size: known.identity.size, mode: files[index].mode, sha256: known.sha256))
      kept[index] = files[index].identity != nil
    }
    try FolderReading.hash(files, at: toRead, into: &entries, kept: &kept)
    cache.replace(with: entries, scanned: files, kept: kept)
    return (entries, toRead.count)
  }
}

/// What `ConfigurationArchive.pack` wrote.
public struct PackedArchive: Sendable {
  public var manifest: Manifest
  /// The archive's size.
  public var bytes: Int64
}

/// A file's status as `fstat` gives it, as far as a change to its content shows in it.
///
/// The times' seconds and nanoseconds are kept apart, in 48 bytes rather than the 56 that two
/// `timespec`s take: a scan keeps one for every file.
struct FileIdentity: Equatable, Sendable {
  var device: UInt64
  var inode: UInt64
  var size: Int64
  private var modifiedSeconds: Int64
  private var changedSeconds: Int64
  private var modifiedNanoseconds: UInt32
  private var changedNanoseconds: UInt32

  var modified: timespec { timespec(tv_sec: Int(modifiedSeconds), tv_nsec: Int(modifiedNanoseconds)) }
  var changed: timespec { timespec(tv_sec: Int(changedSeconds), tv_nsec: Int(changedNanoseconds)) }

  init(device: UInt64, inode: UInt64, size: Int64, modified: timespec, changed: timespec) {
    self.device = device
    self.inode = inode
    self.size = size
    // Nanoseconds are below 10⁹ (the kernel's and a stat cache's, which checks them when it reads).
    modifiedSeconds = Int64(modified.tv_sec)
    modifiedNanoseconds = UInt32(truncatingIfNeeded: modified.tv_nsec)
    changedSeconds = Int64(changed.tv_sec)
    changedNanoseconds = UInt32(truncatingIfNeeded: changed.tv_nsec)
  }

  /// The status of the open file `fd`, which is `path`.
  init(of fd: Int32, at path: String) throws {
    var info = stat()
    guard fstat(fd, &info) == 0 else { throw SystemError(.status, path) }
    self.init(info)
  }

  init(_ info: stat) {
    self.init(
      device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size), modified: info.st_mtim,
      changed: info.st_ctim)
  }
}

/// One file of a folder as a hashing read found it.
struct ReadFile {
  var entry: ManifestFile
  /// The status right after the read; the content is the one hashed for as long as this holds.
  var identity: FileIdentity
  /// Changed so shortly before it was read that a change right after might not show in its status.
  var isRacy: Bool
}

/// The files of a folder as one hashing read found them, in the scan's order: each one's manifest
/// entry, its status right after the read, and the bytes of the small ones, kept for writing.
///
/// Held as lists of each part rather than a record per file: the entries are the manifest's own
/// list, not a copy; each status is kept in the scan's own list, in place of the one the scan read;
/// and the bytes kept lie in one buffer per reading worker, not an object per file.
struct FolderRead: RandomAccessCollection {
  /// The files as the scan listed them, each with its status as read.
  fileprivate(set) var files: [FolderFile]
  /// Each file's entry, which a manifest of the folder takes as it is.
  fileprivate(set) var entries: [ManifestFile]
  fileprivate var racy: [Bool]
  /// Where each file's bytes start in its worker's buffer, or -1 for a file not kept.
  fileprivate var keptAt: [Int32]
  /// Each worker's kept bytes, in the order of the workers' numbers.
  fileprivate var kept: [FolderReading.KeptBytes]

  var startIndex: Int { 0 }
  var endIndex: Int { entries.count }

  subscript(index: Int) -> ReadFile {
    ReadFile(entry: entries[index], identity: files[index].identity!, isRacy: racy[index])
  }

  /// Whether the bytes of file `index` were kept from the read.
  func keeps(_ index: Int) -> Bool { keptAt[index] >= 0 }

  /// `body` with the bytes of file `index` kept from the read, which it `keeps`.
  func withKeptBytes<Result>(_ index: Int, _ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
    precondition(keeps(index), "file \(index) was not kept")
    let start = Int(keptAt[index])
    return try kept[FolderReading.worker(reading: index, of: kept.count)].bytes.withUnsafeBytes { all in
      try body(UnsafeRawBufferPointer(rebasing: all[start..<start + Int(entries[index].size)]))
    }
  }
}

/// Reading a configuration folder's files for their digests, and once more to write them.
enum FolderReading {
  /// How many bytes of small files a pack keeps from the hashing read, so as not to read them again,
  /// shared equally among the reading workers (1 MiB each on two cores). A compressed pack of
  /// 100,000 files (31 MiB) took 1.5 s keeping 16 MiB, 4 or 2, and peaked 12 and 14 MB lower for the
  /// last two: reading a small file again costs little, holding it until it is written does.
  static let keptBytesBudget = 2 << 20
  /// Files larger than this are read again rather than kept.
  static let largestKeptFile = 256 << 10
  /// A file whose mtime or ctime is this close to its read (or later) is racy: a file system keeps
  /// times to a granularity (2 s for FAT, a clock tick for ext4), and a change within the same
  /// granule leaves them as they were.
  static let racyWindow: Int = 3

  /// Each of `files` read once on up to four cores: its manifest entry, its status, and its bytes
  /// while they fit in `budget`. Each goes to its place in the lists: no slot or copy per file.
  ///
  /// - Throws: the error of the first file in order that could not be read.
  static func read(_ files: consuming [FolderFile], keepingUpTo budget: Int) throws -> FolderRead {
    let workers = readingWorkers
    // Where a file's bytes start is kept in 32 bits.
    precondition(budget / workers <= Int(Int32.max), "a share of the bytes kept is more than 2 GiB")
    var files = files
    var entries = [ManifestFile](repeating: .unread, count: files.count)
    var racy = [Bool](repeating: false, count: files.count)
    var keptAt = [Int32](repeating: -1, count: files.count)
    let kept = (0..<workers).map { _ in KeptBytes(capacity: budget / workers) }
    try entries.withUnsafeMutableBufferPointer { entriesBuffer in
      try files.withUnsafeMutableBufferPointer { filesBuffer in
        try racy.withUnsafeMutableBufferPointer { racyBuffer in
          try keptAt.withUnsafeMutableBufferPointer { keptAtBuffer in
            // Each index is written by one worker only, and read after all of them are done.
            nonisolated(unsafe) let (entries, files) = (entriesBuffer, filesBuffer)
            nonisolated(unsafe) let (racy, keptAt) = (racyBuffer, keptAtBuffer)
            try inParallel(files.count, workers: workers) { index, worker in
              let read = try readOnce(files[index], buffer: worker.buffer, keepingIn: kept[worker.number])
              entries[index] = read.file.entry
              files[index].identity = read.file.identity
              racy[index] = read.file.isRacy
              keptAt[index] = read.keptAt.map(Int32.init) ?? -1
            }
          }
        }
      }
    }
    return FolderRead(files: files, entries: entries, racy: racy, keptAt: keptAt, kept: kept)
  }

  /// One worker's share of the bytes a read keeps, in one buffer: room for `capacity` bytes from the
  /// start, and never more.
  final class KeptBytes: @unchecked Sendable {
    // Written by its one worker only, and read after all of them are done.
    fileprivate var bytes: [UInt8] = []
    fileprivate let capacity: Int

    init(capacity: Int) {
      self.capacity = capacity
      bytes.reserveCapacity(capacity)
    }
  }

  /// How many workers read a folder's files: one per core, up to four.
  static var readingWorkers: Int { min(max(ProcessInfo.processInfo.activeProcessorCount, 1), 4) }

  /// Reads the files at `indices` of `files` on up to four cores, each into its place in `entries`,
  /// and in `kept` whether a stat cache may keep its status: the read found the one the scan read
  /// (a file listed otherwise has none), and the file is not racy.
  ///
  /// - Throws: the error of the first file in order that could not be read.
  static func hash(
    _ files: [FolderFile], at indices: [Int], into entries: inout [ManifestFile], kept: inout [Bool]
  ) throws {
    try entries.withUnsafeMutableBufferPointer { entriesBuffer in
      try kept.withUnsafeMutableBufferPointer { keptBuffer in
        // Each index is written by one worker only, and read after all of them are done.
        nonisolated(unsafe) let (entries, kept) = (entriesBuffer, keptBuffer)
        try inParallel(indices.count, workers: readingWorkers) { position, worker in
          let index = indices[position]
          let read = try readOnce(files[index], buffer: worker.buffer, keepingIn: nil).file
          entries[index] = read.entry
          kept[index] = !read.isRacy && read.identity == files[index].identity
        }
      }
    }
  }

  /// What one reading worker holds: its number, and a buffer of 1 MiB.
  private final class Worker {
    let number: Int
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)

    init(number: Int) { self.number = number }
    deinit { buffer.deallocate() }
  }

  /// The number of the worker, of `workers`, that reads the file at `index`: each takes every
  /// `workers`th index in order, worker `n` the indices `n`, `n + workers`, and so on.
  static func worker(reading index: Int, of workers: Int) -> Int { index % workers }

  /// `body` for each index below `count` on `workers` threads, each with the indices
  /// `worker(reading:of:)` gives it.
  ///
  /// - Throws: the error `body` threw for the lowest index; the other indices are all done.
  private static func inParallel(_ count: Int, workers: Int, _ body: @Sendable (Int, Worker) throws -> Void) throws {
    let failure = Mutex<(index: Int, error: any Error)?>(nil)
    DispatchQueue.concurrentPerform(iterations: workers) { number in
      let worker = Worker(number: number)
      for index in stride(from: number, to: count, by: workers) {
        do {
          try body(index, worker)
        } catch {
          failure.withLock { first in
            if first.map({ index < $0.index }) ?? true { first = (index, error) }
          }
        }
      }
    }
    if let first = failure.withLock({ $0 }) { throw first.error }
  }

  /// Reads `file` for its entry and status; its bytes go to the end of `kept` while they fit.
  ///
  /// - Returns: what was read, and where in `kept` its bytes start, if they were kept.
  private static func readOnce(_ file: FolderFile, buffer: UnsafeMutableRawBufferPointer, keepingIn kept: KeptBytes?)
    throws -> (file: ReadFile, keptAt: Int?)
  {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    let path = file.absolutePath
    let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
    guard fd >= 0 else { throw SystemError(.open, path) }
    defer { close(fd) }
    let before = try FileIdentity(of: fd, at: path)
    var hasher = SHA256Stream()
    var size: Int64 = 0
    // The file is kept while it fits; a file grown past the room it was given is let go.
    let start = kept?.bytes.count ?? 0
    let keepable = Int64(min(kept.map { $0.capacity - start } ?? 0, largestKeptFile))
    var keeping = file.size <= keepable
    try readAll(fd, path: path, buffer: buffer) { chunk in
      hasher.update(chunk)
      size += Int64(chunk.count)
      guard keeping, let kept else { return }
      if size <= keepable {
        kept.bytes.append(contentsOf: chunk)
      } else {
        kept.bytes.removeSubrange(start...)
        keeping = false
      }
    }
    // A write during the read changed the status before the bytes (the kernel updates times first):
    // what was read may be half old, half new.
    let identity = try FileIdentity(of: fd, at: path)
    guard identity == before else {
      throw OperationError(.conflict, "`\(file.path)` changed while it was being read; nothing was written")
    }
    let threshold = now.tv_sec - racyWindow
    let read = ReadFile(
      entry: ManifestFile(path: file.path, size: size, mode: file.mode, sha256: hasher.finalize()),
      identity: identity,
      isRacy: identity.modified.tv_sec >= threshold || identity.changed.tv_sec >= threshold)
    return (read, keeping && kept != nil ? start : nil)
  }

  /// Streams the file at `path`, which must be the one `read` describes: the same inode, size and
  /// times before and after.
  ///
  /// - Throws: `OperationError` (`.conflict`) when it changed since; `SystemError` for I/O failures.
  static func stream(
    _ path: String, as read: ReadFile, buffer: UnsafeMutableRawBufferPointer,
    _ body: (UnsafeRawBufferPointer) throws -> Void
  ) throws {
    let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
    guard fd >= 0 else { throw SystemError(.open, path) }
    defer { close(fd) }
    try checkUnchanged(fd, path: path, as: read)
    try readAll(fd, path: path, buffer: buffer, body)
    // A write during the read changed the status before the bytes (the kernel updates times first).
    try checkUnchanged(fd, path: path, as: read)
  }

  private static func checkUnchanged(_ fd: Int32, path: String, as read: ReadFile) throws {
    guard try FileIdentity(of: fd, at: path) == read.identity else { throw changed(read.entry.path) }
  }

  /// The error of a pack that met a file changing under it.
  static func changed(_ path: String) -> OperationError {
    OperationError(.conflict, "`\(path)` changed while it was being archived; nothing was written")
  }
}

/// One result slot per index, filled by concurrent workers that each own distinct indices.
final class ResultSlots<Value>: @unchecked Sendable {
  private var slots: [Result<Value, any Error>?]
  private let lock = NSLock()

  init(count: Int) { slots = Array(repeating: nil, count: count) }

  func set(_ index: Int, _ compute: () throws -> Value) {
    let result = Result { try compute() }
    lock.lock()
    slots[index] = result
    lock.unlock()
  }

  func values() throws -> [Value] {
    try slots.map { try $0!.get() }
  }
}

/// An `ArchiveOutput` opened for writing: the sink to write to, and how to make the result final.
///
/// A stream's pieces are handed on by `flush()`, which the writer of an archive calls between files.
public final class OpenedOutput {
  public let sink: any ArchiveByteSink
  private let file: AtomicFile?
  private let memory: MemorySink?
  private let piece: (@Sendable (Data) async throws -> Void)?

  public init(_ output: ArchiveOutput) throws {
    switch output {
    case .standardOutput:
      sink = FileDescriptorSink(fd: STDOUT_FILENO, name: output.displayName)
      (file, memory, piece) = (nil, nil, nil)
    case .file(let path, let replaceExisting):
      let atomic = try AtomicFile(path: path, replaceExisting: replaceExisting)
      sink = FileDescriptorSink(fd: atomic.fileDescriptor, name: path, writingBack: true)
      (file, memory, piece) = (atomic, nil, nil)
    case .stream(_, let handOn):
      let memory = MemorySink()
      sink = memory
      (file, self.memory, piece) = (nil, memory, handOn)
    }
  }

  /// A stream's pieces are handed on once they hold this much: one hop per small file would cost more
  /// than the file, and memory stays bounded all the same.
  static let pieceSize = 64 << 10

  /// Hands what was written so far to a stream's caller, once it is a piece's worth, or all of it
  /// when `all` (at the end).
  public func flush(all: Bool = false) async throws {
    guard let memory, let piece, memory.count >= (all ? 1 : Self.pieceSize) else { return }
    try await piece(memory.drain())
  }

  /// The open file of a file output, which can be written at any offset before `commit()`.
  var fileDescriptor: Int32? { file?.fileDescriptor }

  /// Makes the output final: a file moved into place, a stream's last piece handed on.
  public func commit() throws {
    (sink as? FileDescriptorSink)?.drainWriteback()
    try file?.commit()
  }

  deinit {
    // Before the file, if it is dropped, is closed.
    (sink as? FileDescriptorSink)?.drainWriteback()
  }
}
