import Crypto
import Foundation

/// Where an archive is read from: a file, or standard input (`-`).
public enum ArchiveSource: Sendable, Equatable {
  case file(String)
  case standardInput
  /// A file on this machine known to people by another name (an upload spooled on a server).
  case named(path: String, name: String)

  /// `-` is standard input; anything else a path.
  public init(argument: String) {
    self = argument == "-" ? .standardInput : .file(argument)
  }

  public var displayName: String {
    switch self {
    case .file(let path): return path
    case .standardInput: return "standard input"
    case .named(_, let name): return name
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
    case .file(let path), .named(let path, _):
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

  /// The SHA-256 of every byte read so far.
  func digest() -> SHA256Hex { SHA256Hex(hasher.finalize()) }
}

/// The tar stream inside an archive: its one compression layer undone (every checksum verified) and
/// every header watched by a `TarStreamGuard`, as libarchive pulls it.
///
/// libarchive reads plain tar from it and nothing else, so it never decompresses a second layer.
/// After libarchive's end of archive, `finish()` reads the rest: the tar's padding, the compressed
/// stream's end with its checksum, and whatever follows it, so nothing unread is ever accepted.
final class TarInput {
  let raw: ArchiveInputStream
  /// The compression found in the first bytes.
  let compression: Compression
  private let decoder: (any StreamDecoder)?
  private var tarGuard = TarStreamGuard()
  private let output = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 << 10, alignment: 16)
  /// The first raw bytes, read to tell the compression; handed on first.
  private let prefix: UnsafeMutableRawBufferPointer
  private var prefixPending = true
  /// Raw bytes read but not decoded yet (inside `raw`'s buffer or `prefix`).
  private var pending = UnsafeRawBufferPointer(start: nil, count: 0)
  private var rawEnded = false
  private var decoderEnded = false
  /// Why the stream stopped, for the reader to report instead of libarchive's words.
  private(set) var failure: (any Error)?

  init(_ raw: ArchiveInputStream) throws {
    self.raw = raw
    var first: [UInt8] = []
    while first.count < 6 {
      guard let chunk = raw.next() else { throw SystemError(.read, raw.name, code: raw.readError ?? EIO) }
      if chunk.isEmpty { break }
      first += chunk
    }
    prefix = .allocate(byteCount: max(first.count, 1), alignment: 16)
    prefix.copyBytes(from: first)
    prefixPending = !first.isEmpty
    rawEnded = first.isEmpty
    compression = Compression.detect(first) ?? .none
    decoder = try compression.decoder()
  }

  deinit {
    output.deallocate()
    prefix.deallocate()
  }

  /// The next piece of tar, empty at its end; nil when the stream failed (see `failure`).
  func next() -> UnsafeRawBufferPointer? {
    guard failure == nil else { return nil }
    do {
      let chunk = try produce()
      try tarGuard.consume(chunk)
      return chunk
    } catch {
      failure = error
      return nil
    }
  }

  /// Reads what follows the tar's end: only zero padding, then the compressed stream's end, then nothing.
  func finish() throws {
    while true {
      guard let chunk = next() else { throw failure! }
      if chunk.isEmpty { break }
    }
    try tarGuard.finish()
    guard decoder != nil else { return }
    var trailing = 0
    while true {
      let chunk = try nextRaw()
      if chunk.isEmpty { break }
      trailing += chunk.count
      guard chunk.allSatisfy({ $0 == 0 }), trailing <= TarStreamGuard.maxPadding else {
        throw ArchiveRefusal(
          entry: nil, rule: .trailingData, detail: "after the end of the \(compression.rawValue) stream")
      }
    }
  }

  /// Raw bytes: what is pending first, then the next chunk; empty at the end.
  private func nextRaw() throws -> UnsafeRawBufferPointer {
    if !pending.isEmpty {
      defer { pending = UnsafeRawBufferPointer(start: nil, count: 0) }
      return pending
    }
    if prefixPending {
      prefixPending = false
      return UnsafeRawBufferPointer(prefix)
    }
    if rawEnded { return UnsafeRawBufferPointer(start: nil, count: 0) }
    guard let chunk = raw.next() else { throw SystemError(.read, raw.name, code: raw.readError ?? EIO) }
    if chunk.isEmpty { rawEnded = true }
    return chunk
  }

  private func produce() throws -> UnsafeRawBufferPointer {
    guard let decoder else { return try nextRaw() }
    while !decoderEnded {
      if pending.isEmpty { pending = try nextRaw() }
      let (consumed, produced, ended) = try decoder.decode(pending, into: output)
      pending = UnsafeRawBufferPointer(rebasing: pending[consumed...])
      decoderEnded = ended
      if produced > 0 { return UnsafeRawBufferPointer(rebasing: output[0..<produced]) }
      if consumed == 0 && !ended {
        guard pending.isEmpty && rawEnded else {
          throw ArchiveRefusal(entry: nil, rule: .corrupt, detail: "the \(compression.rawValue) decoder is stuck")
        }
        throw ArchiveRefusal(entry: nil, rule: .corrupt, detail: "truncated \(compression.rawValue) input")
      }
    }
    return UnsafeRawBufferPointer(start: nil, count: 0)
  }
}
