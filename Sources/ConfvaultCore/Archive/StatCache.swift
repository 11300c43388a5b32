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
  /// The file as read, until `replace`: each entry's path is compared where it lies in the file's
  /// bytes, so a cache of 20,000 files is read without a string made per file.
  private var stored: Stored
  /// What a scan found, once `replace` has kept it, in path byte order: its files' entries, the files
  /// as the scan listed them, with their statuses, and whether each is kept; what `save` writes. The
  /// scan's own lists, not a copy of them.
  private var replaced: (files: [ManifestFile], scanned: [FolderFile], kept: [Bool])?

  struct Entry: Sendable {
    var identity: FileIdentity
    var sha256: SHA256Hex
  }

  /// A cache file's bytes, checked whole, and where each entry starts in them, in path byte order.
  ///
  /// An entry is read again where it lies when it is asked for: a list of every entry as read, 96
  /// bytes each, was made and copied entry by entry, 6 ms of a one-file push of 20,000 files.
  private struct Stored: Sendable {
    var bytes: [UInt8] = []
    var starts: [Int32] = []

    /// Where the path of the entry starting at `start` lies in `bytes`.
    func path(at start: Int32) -> Range<Int> {
      bytes.withUnsafeBytes { bytes in
        var at = Int(start)
        // Checked when the file was read.
        let length = StatCache.readNumber(bytes, at: &at)!
        return at..<at + Int(length)
      }
    }

    /// The status and digest of the entry starting at `start`.
    func entry(at start: Int32) -> Entry {
      bytes.withUnsafeBytes { bytes in
        var at = path(at: start).upperBound
        // Checked when the file was read.
        return StatCache.readEntry(bytes, at: &at)!
      }
    }
  }

  static let magic = Array("confvault stat cache 1\n".utf8)

  /// The cache at `path`, or an empty one when there is none or it cannot be read.
  public init(path: String) {
    self.path = path
    stored = StatCache.contents(of: path).flatMap(StatCache.decode) ?? Stored()
  }

  /// The bytes of the file at `path`, read into the list the cache keeps (through `Data`, they were
  /// held twice); nil when it cannot be read.
  private static func contents(of path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(Int(info.st_size))
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)
    defer { buffer.deallocate() }
    // A file cut short while it was read is decoded as it was read: a torn cache is not trusted.
    guard (try? readAll(fd, path: path, buffer: buffer) { bytes.append(contentsOf: $0) }) != nil else { return nil }
    return bytes
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
  public var count: Int { replaced.map { $0.kept.count { $0 } } ?? stored.starts.count }

  /// How many entries `lookUp` and `entry(at:)` go over: after `replace`, a file not kept is one too.
  private var slotCount: Int { replaced?.files.count ?? stored.starts.count }

  /// Calls `body` with the index of each of `files` in turn (in path byte order, as a scan lists
  /// them), and, when its status is still the one it had when last read, the index of its entry in
  /// the cache (see `entry(at:)`) and the entry, each entry read once; nil for a file to read.
  ///
  /// One pass over both lists, which are in the same order: no search per file. The status compared
  /// is the one the scan read, if it did.
  func lookUp(
    _ files: [FolderFile], _ body: (Int, Int?, (identity: FileIdentity, sha256: SHA256Hex)?) throws -> Void
  ) throws {
    var at = 0
    // By index: a loop over the files copied each one's record, three strings retained and released.
    for index in files.indices {
      var order = Int32(1)
      while at < slotCount {
        order = comparePath(at, files[index].path)
        guard order < 0 else { break }
        at += 1
      }
      // (A file `replace` did not keep is not known.)
      guard at < slotCount, order == 0, replaced.map({ $0.kept[at] }) ?? true else {
        try body(index, nil, nil)
        continue
      }
      let identity: FileIdentity
      if let scanned = files[index].identity {
        identity = scanned
      } else {
        let path = files[index].absolutePath
        var info = stat()
        guard lstat(path, &info) == 0 else { throw SystemError(.status, path) }
        identity = FileIdentity(info)
      }
      let entry = entry(at: at)
      try entry.identity == identity ? body(index, at, entry) : body(index, nil, nil)
    }
  }

  /// How the path of entry `index` compares with `path` in byte order: below zero when it comes
  /// before, zero when it is the same.
  private func comparePath(_ index: Int, _ path: String) -> Int32 {
    EntryPath.withBytes(path) { theirs in
      if let replaced {
        return EntryPath.withBytes(replaced.files[index].path) { EntryPath.compareBytes($0, theirs) }
      }
      let path = stored.path(at: stored.starts[index])
      return stored.bytes.withUnsafeBufferPointer {
        EntryPath.compareBytes(UnsafeBufferPointer(rebasing: $0[path]), theirs)
      }
    }
  }

  /// The status and digest of the cache's entry `index`.
  func entry(at index: Int) -> (identity: FileIdentity, sha256: SHA256Hex) {
    // A kept file's status is the one the scan read.
    if let replaced { return (replaced.scanned[index].identity!, replaced.files[index].sha256) }
    let entry = stored.entry(at: stored.starts[index])
    return (entry.identity, entry.sha256)
  }

  /// Keeps what a scan found: the digest of each of `files` and the status of each of `scanned`
  /// (the same files, in the same order) where `kept` says so, a racy file being read again next
  /// time; forgets files no longer in the folder.
  mutating func replace(with files: [ManifestFile], scanned: [FolderFile], kept: [Bool]) {
    precondition(files.count == scanned.count && files.count == kept.count, "a status for each file")
    if !files.isInPathOrder {
      let order = files.indices.sorted { EntryPath.byteOrder(files[$0].path, files[$1].path) }
      replaced = (order.map { files[$0] }, order.map { scanned[$0] }, order.map { kept[$0] })
    } else {
      replaced = (files, scanned, kept)
    }
    stored = Stored()
  }

  /// Writes the entries `replace` made (none before it), complete or not at all.
  ///
  /// The entries go out through a buffer of 1 MiB: the file of 100,000 entries made whole in memory
  /// was 14 MB of a first push's peak.
  ///
  /// - Throws: `SystemError` when the folder or the file cannot be written.
  public func save() throws {
    let folder = (path as NSString).deletingLastPathComponent
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    let temporary = path + ".\(getpid()).tmp"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw SystemError(.create, temporary) }
    let flushAt = 1 << 20
    var bytes = StatCache.magic
    bytes.reserveCapacity(flushAt + 4096)
    let (files, scanned, kept) = replaced ?? ([], [], [])
    do {
      // Written out once it holds `flushAt` bytes: it never holds more than that and one entry.
      for index in files.indices where kept[index] {  // in path order: the next read needs no sort
        guard let identity = scanned[index].identity else { continue }
        let path = files[index].path
        bytes.appendNumber(UInt64(path.utf8.count))
        bytes.append(contentsOf: path.utf8)
        bytes.appendNumber(identity.device)
        bytes.appendNumber(identity.inode)
        bytes.appendNumber(UInt64(bitPattern: identity.size))
        bytes.appendNumber(UInt64(bitPattern: Int64(identity.modified.tv_sec)))
        bytes.appendNumber(UInt64(identity.modified.tv_nsec))
        bytes.appendNumber(UInt64(bitPattern: Int64(identity.changed.tv_sec)))
        bytes.appendNumber(UInt64(identity.changed.tv_nsec))
        files[index].sha256.withBytes { bytes.append(contentsOf: $0) }
        if bytes.count >= flushAt {
          try bytes.withUnsafeBytes { try writeAll(fd, $0, name: temporary) }
          bytes.removeAll(keepingCapacity: true)
        }
      }
      try bytes.withUnsafeBytes { try writeAll(fd, $0, name: temporary) }
      // Flushed before the rename, so a crash leaves the old cache or the new one, never a torn one.
      guard fsync(fd) == 0 else { throw SystemError(.write, temporary) }
    } catch {
      close(fd)
      unlink(temporary)
      throw error
    }
    guard close(fd) == 0 else {
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

  /// Where each entry of a cache file starts, in path byte order; nil for a file that is not a
  /// whole cache of this format, which is then not trusted at all.
  private static func decode(_ bytes: [UInt8]) -> Stored? {
    // Each entry's start and its path, all checked here: `Stored` reads them again unchecked.
    let read = bytes.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) -> (starts: [Int32], inOrder: Bool)? in
      guard bytes.starts(with: magic), bytes.count <= Int(Int32.max) else { return nil }
      var starts: [Int32] = []
      var inOrder = true
      var previous: Range<Int>?
      var at = magic.count
      while at < bytes.count {
        let start = at
        guard let length = readNumber(bytes, at: &at), length <= UInt64(bytes.count - at) else { return nil }
        let path = at..<at + Int(length)
        let pathBytes = UnsafeRawBufferPointer(rebasing: bytes[path])
        guard pathBytes.allSatisfy({ $0 < 0x80 }) || String(validating: pathBytes, as: UTF8.self) != nil else {
          return nil
        }
        at = path.upperBound
        guard readEntry(bytes, at: &at) != nil else { return nil }
        if let previous, compare(bytes, path, previous) < 0 { inOrder = false }
        previous = path
        starts.append(Int32(start))
      }
      return (starts, inOrder)
    }
    guard let read else { return nil }
    var stored = Stored(bytes: bytes, starts: read.starts)
    // A cache written before it was kept in order.
    if !read.inOrder {
      stored.starts = read.starts.sorted { a, b in
        bytes.withUnsafeBytes { compare($0, stored.path(at: a), stored.path(at: b)) < 0 }
      }
    }
    return stored
  }

  /// How the bytes at `a` compare with those at `b`, as `EntryPath.compareBytes` says.
  private static func compare(_ bytes: UnsafeRawBufferPointer, _ a: Range<Int>, _ b: Range<Int>) -> Int32 {
    let bytes = bytes.assumingMemoryBound(to: UInt8.self)
    return EntryPath.compareBytes(UnsafeBufferPointer(rebasing: bytes[a]), UnsafeBufferPointer(rebasing: bytes[b]))
  }

  /// The number written at `at` (seven bits a byte, the low ones first), moving `at` past it.
  fileprivate static func readNumber(_ bytes: UnsafeRawBufferPointer, at: inout Int) -> UInt64? {
    // Most numbers but times and inodes take one byte.
    if at < bytes.count && bytes[at] < 0x80 {
      at += 1
      return UInt64(bytes[at - 1])
    }
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

  /// The status and digest written at `at`, after an entry's path, moving `at` past them.
  fileprivate static func readEntry(_ bytes: UnsafeRawBufferPointer, at: inout Int) -> Entry? {
    guard let device = readNumber(bytes, at: &at), let inode = readNumber(bytes, at: &at),
      let size = readNumber(bytes, at: &at), let modified = readNumber(bytes, at: &at),
      let modifiedNanoseconds = readNumber(bytes, at: &at), let changed = readNumber(bytes, at: &at),
      let changedNanoseconds = readNumber(bytes, at: &at)
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
    return Entry(identity: identity, sha256: sha256)
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
