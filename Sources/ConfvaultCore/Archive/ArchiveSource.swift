import Crypto
import Foundation

/// Where an archive is read from: a file, or standard input (`-`).
public enum ArchiveSource: Sendable, Equatable {
  case file(String)
  case standardInput

  /// `-` is standard input; anything else a path.
  public init(argument: String) {
    self = argument == "-" ? .standardInput : .file(argument)
  }

  public var displayName: String {
    switch self {
    case .file(let path): return path
    case .standardInput: return "standard input"
    }
  }
}

/// The raw bytes of an archive as they come off the descriptor, hashed and counted on the way.
///
/// libarchive pulls from it through a C callback; the SHA-256 it computes is the archive file's own
/// (what an import records), without a second read.
final class ArchiveInputStream {
  let name: String
  private let fd: Int32
  private let ownsDescriptor: Bool
  private let buffer: UnsafeMutableRawBufferPointer
  private var hasher = SHA256()
  private(set) var bytesRead: Int64 = 0
  /// The errno of a failed read, kept for the error libarchive will report.
  private(set) var readError: Int32?

  init(_ source: ArchiveSource, bufferSize: Int = 1 << 20) throws {
    switch source {
    case .standardInput:
      fd = STDIN_FILENO
      ownsDescriptor = false
    case .file(let path):
      let opened = open(path, O_RDONLY | O_CLOEXEC)
      guard opened >= 0 else { throw SystemError(.open, path) }
      var info = stat()
      if fstat(opened, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR {
        close(opened)
        throw SystemError(.open, path, code: EISDIR)
      }
      fd = opened
      ownsDescriptor = true
    }
    name = source.displayName
    buffer = .allocate(byteCount: bufferSize, alignment: 16)
  }

  deinit {
    if ownsDescriptor { close(fd) }
    buffer.deallocate()
  }

  /// Reads the next chunk into the stream's buffer; an empty buffer at the end.
  func next() -> UnsafeRawBufferPointer? {
    while true {
      let count = read(fd, buffer.baseAddress, buffer.count)
      if count < 0 {
        if errno == EINTR { continue }
        readError = errno
        return nil
      }
      let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
      hasher.update(bufferPointer: chunk)
      bytesRead += Int64(count)
      return chunk
    }
  }

  /// Reads what follows the end of the archive, up to `limit` bytes, so the digest covers the whole file.
  ///
  /// - Returns: false when more than `limit` bytes follow.
  func drain(limit: Int64) throws -> Bool {
    var trailing: Int64 = 0
    while let chunk = next() {
      if chunk.isEmpty { return true }
      trailing += Int64(chunk.count)
      if trailing > limit { return false }
    }
    throw SystemError(.read, name, code: readError ?? EIO)
  }

  /// The SHA-256 of every byte read so far.
  func digest() -> SHA256Hex { SHA256Hex(hasher.finalize()) }
}
