import CArchive
import CZstd
import Foundation
import Logging

/// Where an archive's compressed bytes go as they are made.
public protocol ArchiveByteSink: AnyObject {
  /// Takes the next bytes of the archive; throwing stops the archive.
  func write(_ bytes: UnsafeRawBufferPointer) throws
}

/// Writes to a file descriptor, which it does not close.
public final class FileDescriptorSink: ArchiveByteSink {
  public let fd: Int32
  /// The output's name, for error messages.
  public let name: String
  /// Where what is written is sent to disk every `writebackStep` bytes, for a file made durable at
  /// the end: its `fsync` then waits for the last few megabytes only, not the whole archive. On a
  /// queue of its own, as starting the disk's writes is work too (allocating the file's blocks),
  /// which the writer need not wait for.
  private let writeback: DispatchQueue?
  private var written: Int64 = 0
  private var sentBack: Int64 = 0
  static let writebackStep: Int64 = 8 << 20

  public init(fd: Int32, name: String, writingBack: Bool = false) {
    self.fd = fd
    self.name = name
    writeback = writingBack && startWriteback != nil ? DispatchQueue(label: "confvault.writeback") : nil
  }

  deinit { drainWriteback() }

  public func write(_ bytes: UnsafeRawBufferPointer) throws {
    try writeAll(fd, bytes, name: name)
    written += Int64(bytes.count)
    if let writeback, written - sentBack >= Self.writebackStep {
      // Only a start: a failure shows in the `fsync` that makes the file final.
      let (fd, from, count) = (fd, sentBack, written - sentBack)
      writeback.async { _ = startWriteback?(fd, from, count, syncFileRangeWrite) }
      sentBack = written
    }
  }

  /// Waits until every `sync_file_range` asked for so far has been called: they use the file's
  /// descriptor, so this comes before the file is closed.
  public func drainWriteback() {
    writeback?.sync {}
  }
}

/// Writes all of `bytes` to `fd`, at `offset` when given, else where the file stands.
///
/// - Throws: `SystemError` naming `name`.
func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int? = nil, name: String) throws {
  var done = 0
  while done < bytes.count {
    let start = bytes.baseAddress! + done
    let count =
      offset.map { pwrite(fd, start, bytes.count - done, off_t($0 + done)) }
      ?? Glibc.write(fd, start, bytes.count - done)
    if count < 0 {
      if errno == EINTR { continue }
      throw SystemError(.write, name)
    }
    done += count
  }
}

/// `sync_file_range(2)`, which starts writing a file's range to disk without waiting for it: glibc
/// declares it for `_GNU_SOURCE` only, so Swift's Glibc module leaves it out.
private let startWriteback: (@convention(c) (Int32, Int64, Int64, UInt32) -> Int32)? = {
  guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "sync_file_range") else { return nil }
  return unsafeBitCast(symbol, to: (@convention(c) (Int32, Int64, Int64, UInt32) -> Int32).self)
}()
private let syncFileRangeWrite: UInt32 = 2

/// Keeps the bytes in memory until the caller drains them: a server streams an archive into a
/// response this way, a drained piece at a time, never the whole archive.
public final class MemorySink: ArchiveByteSink {
  private var buffered = Data()

  public init() {}

  public func write(_ bytes: UnsafeRawBufferPointer) throws {
    buffered.append(contentsOf: bytes)
  }

  /// How many bytes wait to be drained.
  public var count: Int { buffered.count }

  /// The bytes written since the last drain.
  public func drain() -> Data {
    defer { buffered.removeAll(keepingCapacity: true) }
    return buffered
  }
}

/// A streaming, deterministic tar writer onto a byte sink.
///
/// Entries are pax-restricted tar (ustar headers, a pax header only where a name needs one; no
/// per-run fields), owned by uid/gid 0 with no names, with no atime or ctime; gzip carries no
/// timestamp or name; the last block is not padded. One `ArchiveWriter` owns one libarchive handle.
final class ArchiveWriter {
  /// What libarchive's write callback reaches: the sink, through our own zstd compressor when there
  /// is one, and a count of everything the sink gets, and its hash when asked for.
  final class Output {
    let sink: any ArchiveByteSink
    let compressor: ZstdCompressor?
    var hasher: SHA256Stream?
    var bytes: Int64 = 0
    var error: (any Error)?

    init(sink: any ArchiveByteSink, compressor: ZstdCompressor?, hashing: Bool) {
      self.sink = sink
      self.compressor = compressor
      hasher = hashing ? SHA256Stream() : nil
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
      guard let compressor else { return try emit(bytes) }
      try compressor.compress(bytes, end: false, emit)
    }

    func finish() throws {
      try compressor?.compress(UnsafeRawBufferPointer(start: nil, count: 0), end: true, emit)
    }

    private func emit(_ bytes: UnsafeRawBufferPointer) throws {
      try sink.write(bytes)
      hasher?.update(bytes)
      self.bytes += Int64(bytes.count)
    }
  }

  let output: Output
  private let archive: OpaquePointer
  private let entry: OpaquePointer
  private let destination: String
  private let logger: Logger?
  private var closed = false
  private var entryPath = ""
  private var entrySize: Int64 = 0
  private var entryWritten: Int64 = 0

  /// Opens a writer onto `sink`.
  ///
  /// - Parameters:
  ///   - destination: the output's name, for error messages.
  ///   - logger: where libarchive's warnings go.
  ///   - hashingOutput: whether `output.hasher` hashes the archive's bytes.
  init(
    sink: any ArchiveByteSink, compression: Compression, destination: String, logger: Logger? = nil,
    hashingOutput: Bool = true
  ) throws {
    LibArchive.prepare()
    guard let archive = archive_write_new() else {
      throw OperationError(.internal, "libarchive could not allocate a writer (out of memory)")
    }
    guard let entry = archive_entry_new() else {
      archive_write_free(archive)
      throw OperationError(.internal, "libarchive could not allocate an entry (out of memory)")
    }
    self.archive = archive
    self.entry = entry
    self.destination = destination
    self.logger = logger
    // libarchive 3.6 writes zstd frames without a content checksum; ours carry one, so a damaged
    // archive is caught by any zstd reader.
    self.output = Output(
      sink: sink, compressor: compression == .zstd ? try ZstdCompressor() : nil, hashing: hashingOutput)
    try check(archive_write_set_format_pax_restricted(archive), "set the tar format")
    switch compression {
    case .gzip:
      try check(archive_write_add_filter_gzip(archive), "enable gzip")
      try check(archive_write_set_options(archive, "gzip:!timestamp"), "drop the gzip timestamp")
    case .zstd:
      try check(archive_write_add_filter_none(archive), "leave zstd to the output")
    case .xz:
      try check(archive_write_add_filter_xz(archive), "enable xz")
    case .bzip2:
      try check(archive_write_add_filter_bzip2(archive), "enable bzip2")
    case .none:
      try check(archive_write_add_filter_none(archive), "disable compression")
    }
    try check(archive_write_set_bytes_in_last_block(archive, 1), "set block padding")
    let context = Unmanaged.passUnretained(output).toOpaque()
    try check(archive_write_open(archive, context, nil, writeCallback, nil), "open the output")
  }

  deinit {
    // A writer dropped before close() failed part way: mark it failed so that freeing it does not
    // finish the archive, which would make a partial stream on standard output look complete.
    if !closed { archive_write_fail(archive) }
    archive_entry_free(entry)
    archive_write_free(archive)
  }

  /// Starts a regular-file entry of `size` bytes; its content follows through `writeData`.
  func beginFile(path: String, size: Int64, mode: FileMode, modificationTime: Int64) throws {
    archive_entry_clear(entry)
    archive_entry_copy_pathname(entry, path)
    archive_entry_set_filetype(entry, LibArchive.regular)
    archive_entry_set_perm(entry, mode_t(mode.permissions))
    archive_entry_set_size(entry, size)
    archive_entry_set_mtime(entry, time_t(modificationTime), 0)
    archive_entry_set_uid(entry, 0)
    archive_entry_set_gid(entry, 0)
    entryPath = path
    entrySize = size
    entryWritten = 0
    try check(archive_write_header(archive, entry), "write the header of `\(path)`")
  }

  func writeData(_ chunk: UnsafeRawBufferPointer) throws {
    guard chunk.count > 0 else { return }
    entryWritten += Int64(chunk.count)
    guard entryWritten <= entrySize else {
      throw OperationError(.conflict, "`\(entryPath)` grew while it was being written")
    }
    let result = archive_write_data(archive, chunk.baseAddress, chunk.count)
    if result < 0 { try check(Int32(result), "write `\(entryPath)`") }
  }

  func finishFile() throws {
    guard entryWritten == entrySize else {
      throw OperationError(
        .conflict, "`\(entryPath)` changed while it was being written (\(entryWritten) of \(entrySize) bytes)")
    }
    try check(archive_write_finish_entry(archive), "finish `\(entryPath)`")
  }

  /// Flushes the compressor and the last block; the archive is complete only after this.
  func close() throws {
    closed = true
    try check(archive_write_close(archive), "finish the archive")
    try output.finish()
  }

  /// Turns libarchive's return code into an error; a warning is logged, not ignored, and not fatal:
  /// our own writes are checked again when the archive is read back.
  private func check(_ result: Int32, _ action: String) throws {
    if result == LibArchive.warn {
      logger?.warning(
        "libarchive warned",
        metadata: [
          "action": "\(action)", "destination": "\(destination)",
          "message": "\(LibArchive.message(archive, fallback: "no message"))",
        ])
      return
    }
    guard result < LibArchive.ok else { return }
    if let error = output.error { throw error }
    let code = LibArchive.errorNumber(archive)
    // A positive code is the operating system's errno (disk full, I/O error); libarchive's own are negative.
    if code > 0 { throw SystemError(.write, destination, code: code) }
    throw OperationError(
      .ioError,
      "cannot \(action) in `\(destination)`: \(LibArchive.message(archive, fallback: "libarchive gave no message"))"
    )
  }
}

private func writeCallback(
  _ archive: OpaquePointer?, _ context: UnsafeMutableRawPointer?, _ buffer: UnsafeRawPointer?, _ length: Int
) -> la_ssize_t {
  let output = Unmanaged<ArchiveWriter.Output>.fromOpaque(context!).takeUnretainedValue()
  do {
    try output.write(UnsafeRawBufferPointer(start: buffer, count: length))
  } catch {
    output.error = error
    return -1
  }
  return length
}

/// Streaming zstd compression with a content checksum, at libarchive's default level.
final class ZstdCompressor {
  private let stream: OpaquePointer
  private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: ZSTD_CStreamOutSize(), alignment: 16)

  init() throws {
    guard let stream = ZSTD_createCCtx() else {
      buffer.deallocate()
      throw OperationError(.internal, "zstd could not allocate a compression context (out of memory)")
    }
    self.stream = stream
    ZSTD_CCtx_setParameter(stream, ZSTD_c_compressionLevel, 3)
    ZSTD_CCtx_setParameter(stream, ZSTD_c_checksumFlag, 1)
  }

  deinit {
    ZSTD_freeCCtx(stream)
    buffer.deallocate()
  }

  /// Compresses `input`, handing each piece of output to `emit`; `end` closes the frame.
  func compress(_ input: UnsafeRawBufferPointer, end: Bool, _ emit: (UnsafeRawBufferPointer) throws -> Void) throws {
    var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
    while true {
      var outBuffer = ZSTD_outBuffer(dst: buffer.baseAddress, size: buffer.count, pos: 0)
      let remaining = ZSTD_compressStream2(stream, &outBuffer, &inBuffer, end ? ZSTD_e_end : ZSTD_e_continue)
      guard ZSTD_isError(remaining) == 0 else {
        throw OperationError(.internal, "zstd compression failed: \(String(cString: ZSTD_getErrorName(remaining)))")
      }
      if outBuffer.pos > 0 { try emit(UnsafeRawBufferPointer(rebasing: buffer[0..<outBuffer.pos])) }
      if end ? remaining == 0 : inBuffer.pos == inBuffer.size { return }
    }
  }
}
