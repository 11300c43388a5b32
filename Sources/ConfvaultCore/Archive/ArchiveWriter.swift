import CArchive
import Foundation

/// A streaming, deterministic tar writer onto a file descriptor.
///
/// Entries are pax-restricted tar (ustar headers, a pax header only where a name needs one; no
/// per-run fields), owned by uid/gid 0 with no names, with no atime or ctime; gzip carries no
/// timestamp or name; the last block is not padded. One `ArchiveWriter` owns one libarchive handle.
final class ArchiveWriter {
  /// Where the compressed bytes go: the descriptor, through a hash of everything written.
  final class Output {
    let fd: Int32
    var hasher = SHA256Stream()
    var bytes: Int64 = 0
    var error: Int32?

    init(fd: Int32) { self.fd = fd }
  }

  let output: Output
  private let archive: OpaquePointer
  private let entry: OpaquePointer
  private let destination: String
  private var closed = false

  /// Opens a writer onto `fd`, which it does not close.
  ///
  /// - Parameter destination: the output's name, for error messages.
  init(fd: Int32, compression: Compression, destination: String) throws {
    LibArchive.prepare()
    guard let archive = archive_write_new() else {
      throw OperationError(.ioError, "libarchive could not allocate a writer")
    }
    guard let entry = archive_entry_new() else {
      archive_write_free(archive)
      throw OperationError(.ioError, "libarchive could not allocate an entry")
    }
    self.archive = archive
    self.entry = entry
    self.destination = destination
    self.output = Output(fd: fd)
    try check(archive_write_set_format_pax_restricted(archive), "set the tar format")
    switch compression {
    case .gzip:
      try check(archive_write_add_filter_gzip(archive), "enable gzip")
      try check(archive_write_set_options(archive, "gzip:!timestamp"), "drop the gzip timestamp")
    case .zstd:
      try check(archive_write_add_filter_zstd(archive), "enable zstd")
    case .xz:
      try check(archive_write_add_filter_xz(archive), "enable xz")
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

  /// Writes one regular-file entry whose content `body` streams through the `write` it is handed.
  ///
  /// - Throws: an I/O error from the output, or whatever `body` throws.
  func writeFile(
    path: String, size: Int64, mode: FileMode, modificationTime: Int64,
    body: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void
  ) throws {
    archive_entry_clear(entry)
    archive_entry_copy_pathname(entry, path)
    archive_entry_set_filetype(entry, LibArchive.regular)
    archive_entry_set_perm(entry, mode_t(mode.permissions))
    archive_entry_set_size(entry, size)
    archive_entry_set_mtime(entry, time_t(modificationTime), 0)
    archive_entry_set_uid(entry, 0)
    archive_entry_set_gid(entry, 0)
    try check(archive_write_header(archive, entry), "write the header of `\(path)`")
    var written: Int64 = 0
    try body { chunk in
      guard chunk.count > 0 else { return }
      written += Int64(chunk.count)
      guard written <= size else {
        throw OperationError(.operationFailed, "`\(path)` grew while it was being written")
      }
      let result = archive_write_data(archive, chunk.baseAddress, chunk.count)
      if result < 0 { try check(Int32(result), "write `\(path)`") }
    }
    guard written == size else {
      throw OperationError(
        .operationFailed, "`\(path)` changed while it was being written (\(written) of \(size) bytes)")
    }
    try check(archive_write_finish_entry(archive), "finish `\(path)`")
  }

  /// Flushes the compressor and the last block; the archive is complete only after this.
  func close() throws {
    closed = true
    try check(archive_write_close(archive), "finish the archive")
  }

  private func check(_ result: Int32, _ action: String) throws {
    guard result < LibArchive.ok && result != LibArchive.warn else { return }
    if let code = output.error { throw SystemError(.write, destination, code: code) }
    let code = LibArchive.errorNumber(archive)
    // A positive code is the operating system's errno (disk full, I/O error); libarchive's own are negative.
    if code > 0 { throw SystemError(.write, destination, code: code) }
    throw OperationError(
      .ioError,
      "cannot \(action) in `\(destination)`: \(LibArchive.message(archive, fallback: "unknown libarchive error"))"
    )
  }
}

private func writeCallback(
  _ archive: OpaquePointer?, _ context: UnsafeMutableRawPointer?, _ buffer: UnsafeRawPointer?, _ length: Int
) -> la_ssize_t {
  let output = Unmanaged<ArchiveWriter.Output>.fromOpaque(context!).takeUnretainedValue()
  var offset = 0
  while offset < length {
    let written = write(output.fd, buffer! + offset, length - offset)
    if written < 0 {
      if errno == EINTR { continue }
      output.error = errno
      return -1
    }
    offset += written
  }
  output.hasher.update(UnsafeRawBufferPointer(start: buffer, count: length))
  output.bytes += Int64(length)
  return length
}
