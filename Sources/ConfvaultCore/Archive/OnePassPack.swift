import Foundation

extension ConfigurationArchive {
  /// Packs `files` into an uncompressed archive file, reading each file once: its bytes are written
  /// as they are read and hashed on another core, and the manifest, written first with every digest
  /// left blank, gets its digests in place at the end. A digest is 64 hex digits whatever the bytes,
  /// so the manifest keeps its size and every file its place.
  ///
  /// The bytes written are the bytes hashed, so the archive always agrees with its manifest; and a
  /// file changed while it is read stops the pack, as a mix of its old and new bytes is a file that
  /// never was. Its status (inode, size, mtime and ctime to the nanosecond) must be the same before
  /// and after the read; a file changed within `FolderReading.racyWindow` before it was read, whose
  /// status may not show a change made within the same timestamp, is read once more at the end and
  /// must give the same digest.
  ///
  /// - Throws: `OperationError` (`.conflict`) when a file changed since the scan or while it was
  ///   read; `SystemError` for I/O failures.
  static func packInOnePass(
    _ files: [FolderFile], app: String?, environment: String?, modificationTime: Int64, into target: OpenedOutput,
    destination: String
  ) throws -> PackedArchive {
    guard let fileDescriptor = target.fileDescriptor else {
      preconditionFailure("a pack in one pass writes to a file")
    }
    let blank = Manifest(
      app: app, environment: environment, version: nil,
      files: files.map { ManifestFile(path: $0.path, size: $0.size, mode: $0.mode, sha256: ManifestFile.unread.sha256) }
    )
    let head = HeadKeepingSink(target.sink)
    let writer = try ConfigurationArchiveWriter(
      manifest: blank, modificationTime: modificationTime, compression: .none, sink: head, destination: destination,
      hashingOutput: false)
    let hasher = PackHasher(files: files.count)
    var racy: [Int] = []
    for (index, file) in files.enumerated() {
      try writer.writeVouchedFile { write in
        if try hasher.read(file, as: index, write) { racy.append(index) }
      }
    }
    let bytes = try writer.close()
    let digests = hasher.digests()
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    defer { buffer.deallocate() }
    for index in racy {
      var again = SHA256Stream()
      try ConfigurationFolder.stream(files[index].absolutePath, buffer: buffer) { again.update($0) }
      guard again.finalize() == digests[index] else { throw FolderReading.changed(files[index].path) }
    }
    var entries = blank.files
    for index in entries.indices { entries[index].sha256 = digests[index] }
    let manifest = Manifest(app: app, environment: environment, version: nil, files: entries)
    guard var offset = Self.manifestOffset(head.bytes) else {
      throw OperationError(.internal, "the manifest's header in `\(destination)` is not one this pack wrote")
    }
    let encoder = ManifestEncoder(manifest)
    guard encoder.byteCount() == ManifestEncoder(blank).byteCount() else {
      throw OperationError(.internal, "the manifest of `\(destination)` changed size when its digests were filled in")
    }
    try encoder.write { piece in
      try writeAll(fileDescriptor, piece, at: offset, name: destination)
      offset += piece.count
    }
    try target.commit()
    return PackedArchive(manifest: manifest, bytes: bytes)
  }

  /// Where the manifest's bytes start in an uncompressed archive that begins with `head`: after its
  /// header, and after a pax header that libarchive may put before it; nil if the first entry is not
  /// the manifest.
  static func manifestOffset(_ head: [UInt8]) -> Int? {
    var offset = 0
    while offset + 512 <= head.count {
      let type = head[offset + 156]
      if type == UInt8(ascii: "x") {
        guard let size = octal(head[offset + 124..<offset + 136]) else { return nil }
        offset += 512 + (size + 511) / 512 * 512
        continue
      }
      let name = head[offset..<offset + 100].prefix { $0 != 0 }
      guard type == UInt8(ascii: "0"), name.elementsEqual(Manifest.entryName.utf8) else { return nil }
      return offset + 512
    }
    return nil
  }

  /// A tar header's octal number field: digits, ended by a space or NUL.
  private static func octal(_ field: ArraySlice<UInt8>) -> Int? {
    var value = 0
    for byte in field.drop(while: { $0 == UInt8(ascii: " ") }) {
      guard byte != 0, byte != UInt8(ascii: " ") else { break }
      guard (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(byte), value < Int.max >> 3 else { return nil }
      value = value << 3 | Int(byte - UInt8(ascii: "0"))
    }
    return value
  }
}

/// Hands bytes on to another sink, keeping the first few kilobytes: where an uncompressed archive's
/// first entry starts.
final class HeadKeepingSink: ArchiveByteSink {
  private let sink: any ArchiveByteSink
  private(set) var bytes: [UInt8] = []
  private let keeping = 4096

  init(_ sink: any ArchiveByteSink) { self.sink = sink }

  func write(_ bytes: UnsafeRawBufferPointer) throws {
    if self.bytes.count < keeping { self.bytes += bytes.prefix(keeping - self.bytes.count) }
    try sink.write(bytes)
  }
}

/// Hashes the files a pack reads on a thread of its own, while the pack writes the same bytes.
///
/// Reads fill slabs of 1 MiB in turn, many small files to a slab; a full slab goes to the hashing
/// thread whole, with where each file's bytes lie in it, so handing over costs little per file. Four
/// slabs bound what waits to be hashed; the reader waits for the oldest once all four are full.
final class PackHasher: @unchecked Sendable {
  // A slab belongs to the reader until it is handed over, then to the hashing queue until it is
  // released by `free`: never to both at once.
  private final class Slab: @unchecked Sendable {
    let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    var used = 0
    /// The files' bytes in the slab, in order; `ends` marks the last piece of a file.
    var pieces: [(file: Int, range: Range<Int>, ends: Bool)] = []

    deinit { bytes.deallocate() }
  }

  /// A slab with less room than this is handed over rather than read into.
  private static let smallestRead = 64 << 10

  private let slabs = (0..<4).map { _ in Slab() }
  private let free: DispatchSemaphore
  private let queue = DispatchQueue(label: "confvault.pack.hash")
  private var current = 0
  // Only on `queue`: the file being hashed, and every file's digest.
  private var hasher = SHA256Stream()
  private var hashed: [SHA256Hex]

  init(files: Int) {
    hashed = Array(repeating: ManifestFile.unread.sha256, count: files)
    free = DispatchSemaphore(value: slabs.count - 1)
  }

  /// Reads `file` to its end, handing each piece read to `write` and to the hash of file number
  /// `index`; returns whether it is racy (changed so shortly before it was read that a change
  /// right after might not show in its status).
  ///
  /// - Throws: `OperationError` (`.conflict`) when its size is not the scan's, or its status
  ///   changed while it was read; `SystemError` when it cannot be opened or read (a symlink put in
  ///   its place is refused).
  func read(_ file: FolderFile, as index: Int, _ write: (UnsafeRawBufferPointer) throws -> Void) throws -> Bool {
    let path = file.absolutePath
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
    guard fd >= 0 else { throw SystemError(.open, path) }
    defer { close(fd) }
    let before = try FileIdentity(of: fd, at: path)
    guard before.size == file.size else { throw FolderReading.changed(file.path) }
    var total: Int64 = 0
    while true {
      var slab = slabs[current]
      if slab.bytes.count - slab.used < Self.smallestRead {
        handOver()
        slab = slabs[current]
      }
      let count = Glibc.read(fd, slab.bytes.baseAddress! + slab.used, slab.bytes.count - slab.used)
      if count < 0 {
        if errno == EINTR { continue }
        throw SystemError(.read, path)
      }
      total += Int64(count)
      guard total <= file.size else { throw FolderReading.changed(file.path) }
      let range = slab.used..<slab.used + count
      slab.pieces.append((index, range, count == 0))
      if count == 0 { break }
      slab.used += count
      try write(UnsafeRawBufferPointer(rebasing: slab.bytes[range]))
    }
    // A write during the read changed the status before the bytes (the kernel updates times first).
    guard total == file.size, try FileIdentity(of: fd, at: path) == before else {
      throw FolderReading.changed(file.path)
    }
    let threshold = now.tv_sec - FolderReading.racyWindow
    return before.modified.tv_sec >= threshold || before.changed.tv_sec >= threshold
  }

  /// Every file's digest, once the last slab is hashed.
  func digests() -> [SHA256Hex] {
    handOver()
    return queue.sync { hashed }
  }

  /// Sends the current slab to be hashed, and takes the next once it is free.
  private func handOver() {
    let slab = slabs[current]
    queue.async {
      for piece in slab.pieces {
        self.hasher.update(UnsafeRawBufferPointer(rebasing: slab.bytes[piece.range]))
        if piece.ends {
          self.hashed[piece.file] = self.hasher.finalize()
          self.hasher = SHA256Stream()
        }
      }
      slab.pieces.removeAll(keepingCapacity: true)
      slab.used = 0
      self.free.signal()
    }
    free.wait()
    current = (current + 1) % slabs.count
  }
}
