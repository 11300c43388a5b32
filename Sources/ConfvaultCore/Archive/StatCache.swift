import Foundation

/// What a configuration folder's files were when they were last read for their digests: each file's
/// status (device, inode, size, mtime and ctime to the nanosecond) and the SHA-256 of its content.
///
/// A push or status of the same folder reads again only the files whose status changed, as git's
/// index does. A file changed so shortly before it was read that a later change might leave its
/// times as they were (the "racy" window of `FolderReading.racyWindow` seconds) is not kept, so it
/// is read again next time: a change made within the same second as the previous push is never
/// missed.
///
/// The cache is one file, written whole through a temporary file and a rename; a cache that is
/// missing, damaged or from another format is ignored (everything is read), never trusted.
public struct StatCache: Sendable {
  public let path: String
  /// Each known file, in path byte order, found by halving: a dictionary of 100,000 paths took about
  /// 40 MiB as it grew, this array a quarter of that.
  private var entries: [(path: String, entry: Entry)]

  struct Entry: Sendable {
    var identity: FileIdentity
    var sha256: SHA256Hex
  }

  static let magic = Array("confvault stat cache 1\n".utf8)

  /// The cache at `path`, or an empty one when there is none or it cannot be read.
  public init(path: String) {
    self.path = path
    entries = (try? Data(contentsOf: URL(fileURLWithPath: path))).flatMap(StatCache.decode) ?? []
  }

  /// Whether a stat cache can be trusted for the folder at `path`: not on a network or FUSE file
  /// system, whose times come from another clock (the racy guard compares them with this one) and
  /// whose attributes a client may cache after another host changed the file.
  public static func canTrust(folder path: String) -> Bool {
    guard let fileSystemStatus else { return false }
    // `struct statfs` starts with `f_type` as a `long` on Linux; the buffer is larger than the struct.
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: 512, alignment: 16)
    defer { buffer.deallocate() }
    guard fileSystemStatus(path, buffer) == 0 else { return false }
    let untrusted: Set<Int> = [
      0x6969,  // NFS
      0x517B,  // SMB
      0xFF53_4D42,  // CIFS
      0xFE53_4D42,  // SMB2
      0x6573_5546,  // FUSE
      0x0102_1997,  // 9P
      0x0BD0_0BD0,  // Lustre
      0x4750_4653,  // GPFS
      0x564C,  // NCP
    ]
    return !untrusted.contains(buffer.load(as: Int.self))
  }

  /// How many files it knows.
  public var count: Int { entries.count }

  /// For each of `files` (in path byte order, as a scan lists them), the index of its entry in the
  /// cache when its status is still the one it had when last read (see `entry(at:)`); -1 for a file
  /// to read.
  ///
  /// One pass over both lists, which are in the same order: no search per file. The status compared
  /// is the one the scan read, if it did.
  func known(_ files: [FolderFile]) throws -> [Int32] {
    var known: [Int32] = []
    known.reserveCapacity(files.count)
    var at = 0
    for file in files {
      while at < entries.count && EntryPath.byteOrder(entries[at].path, file.path) { at += 1 }
      guard at < entries.count, EntryPath.sameBytes(entries[at].path, file.path) else {
        known.append(-1)
        continue
      }
      let identity: FileIdentity
      if let scanned = file.identity {
        identity = scanned
      } else {
        var info = stat()
        guard lstat(file.absolutePath, &info) == 0 else { throw SystemError(.status, file.absolutePath) }
        identity = FileIdentity(info)
      }
      known.append(entries[at].entry.identity == identity ? Int32(at) : -1)
    }
    return known
  }

  /// The status and digest of the cache's entry `index`.
  func entry(at index: Int) -> (identity: FileIdentity, sha256: SHA256Hex) {
    (entries[index].entry.identity, entries[index].entry.sha256)
  }

  /// Keeps what a scan found: each file's status and digest, except where its status is nil (a racy
  /// file, read again next time); forgets files no longer in the folder.
  mutating func replace(with files: [ManifestFile], statuses: [FileIdentity?]) {
    entries.removeAll()
    entries.reserveCapacity(files.count)
    for (file, status) in zip(files, statuses) {
      if let status { entries.append((file.path, Entry(identity: status, sha256: file.sha256))) }
    }
    StatCache.sort(&entries)
  }

  private static func sort(_ entries: inout [(path: String, entry: Entry)]) {
    let inOrder = zip(entries, entries.dropFirst()).allSatisfy { EntryPath.byteOrder($0.path, $1.path) }
    if !inOrder { entries.sort { EntryPath.byteOrder($0.path, $1.path) } }
  }

  /// Writes the cache, complete or not at all.
  ///
  /// - Throws: `SystemError` when the folder or the file cannot be written.
  public func save() throws {
    let folder = (path as NSString).deletingLastPathComponent
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    var bytes = StatCache.magic
    bytes.reserveCapacity(entries.count * 100)
    for (path, entry) in entries {  // in path order: the next read needs no sort
      bytes.appendNumber(UInt64(path.utf8.count))
      bytes.append(contentsOf: path.utf8)
      bytes.appendNumber(entry.identity.device)
      bytes.appendNumber(entry.identity.inode)
      bytes.appendNumber(UInt64(bitPattern: entry.identity.size))
      bytes.appendNumber(UInt64(bitPattern: Int64(entry.identity.modified.tv_sec)))
      bytes.appendNumber(UInt64(entry.identity.modified.tv_nsec))
      bytes.appendNumber(UInt64(bitPattern: Int64(entry.identity.changed.tv_sec)))
      bytes.appendNumber(UInt64(entry.identity.changed.tv_nsec))
      entry.sha256.withBytes { bytes.append(contentsOf: $0) }
    }
    let temporary = path + ".\(getpid()).tmp"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw SystemError(.create, temporary) }
    var written = 0
    let wrote = bytes.withUnsafeBytes { buffer in
      while written < buffer.count {
        let count = write(fd, buffer.baseAddress! + written, buffer.count - written)
        if count < 0 && errno == EINTR { continue }
        guard count > 0 else { return false }
        written += count
      }
      return true
    }
    // Flushed before the rename, so a crash leaves the old cache or the new one, never a torn one.
    let flushed = wrote && fsync(fd) == 0
    guard close(fd) == 0 && flushed else {
      let error = SystemError(.write, temporary)
      unlink(temporary)
      throw error
    }
    guard rename(temporary, path) == 0 else {
      let error = SystemError(.rename, path)
      unlink(temporary)
      throw error
    }
  }

  private static func decode(_ data: Data) -> [(path: String, entry: Entry)]? {
    data.withUnsafeBytes { decode(UnsafeRawBufferPointer($0)) }
  }

  private static func decode(_ bytes: UnsafeRawBufferPointer) -> [(path: String, entry: Entry)]? {
    guard bytes.starts(with: magic) else { return nil }
    var at = magic.count
    func number() -> UInt64? {
      var value: UInt64 = 0
      for shift in stride(from: UInt64(0), to: 64, by: 7) {
        guard at < bytes.count else { return nil }
        let byte = bytes[at]
        at += 1
        value |= UInt64(byte & 0x7F) << shift
        if byte < 0x80 { return value }
      }
      return nil
    }
    var entries: [(path: String, entry: Entry)] = []
    while at < bytes.count {
      guard let length = number(), length <= UInt64(bytes.count - at),
        let path = String(validating: bytes[at..<at + Int(length)], as: UTF8.self)
      else { return nil }
      at += Int(length)
      guard let device = number(), let inode = number(), let size = number(), let modified = number(),
        let modifiedNanoseconds = number(), let changed = number(), let changedNanoseconds = number()
      else { return nil }
      guard bytes.count - at >= 32, let sha256 = SHA256Hex(bytes: UnsafeRawBufferPointer(rebasing: bytes[at..<at + 32]))
      else { return nil }
      at += 32
      // Nanoseconds past a second are damage: the cache is then not trusted at all.
      guard modifiedNanoseconds < 1_000_000_000, changedNanoseconds < 1_000_000_000 else { return nil }
      let identity = FileIdentity(
        device: device, inode: inode, size: Int64(bitPattern: size),
        modified: timespec(tv_sec: Int(Int64(bitPattern: modified)), tv_nsec: Int(modifiedNanoseconds)),
        changed: timespec(tv_sec: Int(Int64(bitPattern: changed)), tv_nsec: Int(changedNanoseconds)))
      entries.append((path, Entry(identity: identity, sha256: sha256)))
    }
    sort(&entries)  // (a cache written before it was kept in order)
    return entries
  }
}

extension [UInt8] {
  fileprivate mutating func appendNumber(_ value: UInt64) {
    var value = value
    while value >= 0x80 {
      append(UInt8(value & 0x7F) | 0x80)
      value >>= 7
    }
    append(UInt8(value))
  }
}

/// `statfs(2)`: Swift's Glibc module leaves out `sys/vfs.h`.
private let fileSystemStatus: (@convention(c) (UnsafePointer<CChar>, UnsafeMutableRawPointer) -> Int32)? = {
  guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "statfs") else { return nil }
  return unsafeBitCast(symbol, to: (@convention(c) (UnsafePointer<CChar>, UnsafeMutableRawPointer) -> Int32).self)
}()
