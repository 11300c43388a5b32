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
/// every header watched by a `TarStreamGuard`.
///
/// libarchive reads plain tar from it and nothing else, so it never decompresses a second layer.
/// After the tar's end, `finish()` reads the rest: the tar's padding, the compressed stream's end with
/// its checksum, and whatever follows it, so nothing unread is ever accepted.
private final class TarStream {
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

  /// The next piece of tar, empty at its end; nil when the stream failed (see `failure`). A piece
  /// stays valid until the next call.
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

/// The tar stream of an archive as libarchive pulls it, made a few pieces ahead on another thread:
/// reading, hashing, decompressing and guarding the stream take one core while the reader checks
/// entries on another.
///
/// What the stream finds wrong comes to the reader where it was found: a failure inside the tar after
/// the pieces before it, one in what follows the tar's end from `finish()`. A reader that stops early
/// lets go of it, and the thread stops at its next piece.
final class TarInput {
  /// The compression found in the first bytes.
  let compression: Compression
  /// Why the stream stopped, for the reader to report instead of libarchive's words.
  private(set) var failure: (any Error)?
  private let pipe: TarPipe
  /// Whether the piece last given out is still in libarchive's hands (until the next call).
  private var holding = false

  /// Reads the first bytes, to tell the compression, and starts the thread.
  ///
  /// - Throws: `SystemError` when the source cannot be read; an unknown decoder's failure.
  init(_ raw: ArchiveInputStream) throws {
    let stream = try TarStream(raw)
    compression = stream.compression
    pipe = TarPipe(stream)
    let pipe = self.pipe
    // A queue of its own targets the pool that adds a thread whenever none is free, so the pipe never
    // waits behind the readers that wait for it. (A `Thread` made and ended per archive left the
    // allocator holding about 17 MB more at an import's peak.)
    DispatchQueue(label: "confvault.tar-input").async { pipe.run() }
  }

  deinit { pipe.cancel() }

  /// The next piece of tar, empty at its end; nil when the stream failed (see `failure`). A piece
  /// stays valid until the next call.
  func next() -> UnsafeRawBufferPointer? {
    if holding {
      pipe.release()
      holding = false
    }
    switch pipe.take() {
    case .piece(let piece):
      holding = true
      return piece
    case .end:
      return UnsafeRawBufferPointer(start: nil, count: 0)
    case .failed(let error):
      failure = error
      return nil
    }
  }

  /// Reads what follows the tar's end: only zero padding, then the compressed stream's end, then nothing.
  func finish() throws {
    while true {
      guard let piece = next() else { throw failure! }
      if piece.isEmpty { break }
    }
    try pipe.finished()
  }

  /// The SHA-256 of the archive file and how many bytes it has, once `finish()` returned.
  func archiveDigest() -> (sha256: SHA256Hex, bytes: Int64) { pipe.archiveDigest() }
}

/// What a `TarInput` and its thread share: a ring of pieces, filled by the thread, taken in order.
private final class TarPipe: @unchecked Sendable {
  enum Taken {
    case piece(UnsafeRawBufferPointer)
    case end
    case failed(any Error)
  }

  private static let slots = 4
  private static let slotSize = 256 << 10

  /// Touched by the thread alone until `done`.
  private let stream: TarStream
  private let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: slots * slotSize, alignment: 16)
  // Everything below is guarded by `condition`.
  private let condition = NSCondition()
  private var sizes = [Int](repeating: 0, count: slots)
  /// The oldest filled slot, and how many are filled after it (in ring order).
  private var oldest = 0
  private var filled = 0
  /// The thread is done (after the filled slots): why the tar stream failed, if it did, or else
  /// what was wrong with what follows the tar's end.
  private var done = false
  private var streamFailure: (any Error)?
  private var finishFailure: (any Error)?
  private var cancelled = false

  init(_ stream: TarStream) { self.stream = stream }

  deinit { storage.deallocate() }

  /// The thread's work: the whole stream into the ring, then what follows the tar.
  func run() {
    while let piece = stream.next() {
      if piece.isEmpty { break }
      var start = 0
      while start < piece.count {
        guard let slot = freeSlot() else { return }
        let count = min(piece.count - start, Self.slotSize)
        slot.baseAddress!.copyMemory(from: piece.baseAddress! + start, byteCount: count)
        start += count
        publish(count)
      }
    }
    let streamFailure = stream.failure
    var finishFailure: (any Error)?
    if streamFailure == nil {
      do { try stream.finish() } catch { finishFailure = error }
    }
    condition.lock()
    self.streamFailure = streamFailure
    self.finishFailure = finishFailure
    done = true
    condition.broadcast()
    condition.unlock()
  }

  /// The next slot to fill, once one is free; nil when the reader let go.
  private func freeSlot() -> UnsafeMutableRawBufferPointer? {
    condition.lock()
    defer { condition.unlock() }
    while filled == Self.slots && !cancelled { condition.wait() }
    guard !cancelled else { return nil }
    let slot = (oldest + filled) % Self.slots
    return UnsafeMutableRawBufferPointer(rebasing: storage[slot * Self.slotSize..<(slot + 1) * Self.slotSize])
  }

  private func publish(_ count: Int) {
    condition.lock()
    sizes[(oldest + filled) % Self.slots] = count
    filled += 1
    condition.broadcast()
    condition.unlock()
  }

  /// The oldest filled piece, once there is one; the end or the failure after the last.
  func take() -> Taken {
    condition.lock()
    defer { condition.unlock() }
    while filled == 0 && !done { condition.wait() }
    if filled > 0 {
      let start = oldest * Self.slotSize
      return .piece(UnsafeRawBufferPointer(rebasing: storage[start..<start + sizes[oldest]]))
    }
    if let streamFailure { return .failed(streamFailure) }
    return .end
  }

  /// Frees the oldest piece, taken and used.
  func release() {
    condition.lock()
    oldest = (oldest + 1) % Self.slots
    filled -= 1
    condition.broadcast()
    condition.unlock()
  }

  /// Waits for what follows the tar to be read, and throws what was wrong with it.
  func finished() throws {
    condition.lock()
    while !done { condition.wait() }
    let failure = finishFailure
    condition.unlock()
    if let failure { throw failure }
  }

  func archiveDigest() -> (sha256: SHA256Hex, bytes: Int64) {
    condition.lock()
    defer { condition.unlock() }
    precondition(done, "the archive's digest is known once the stream was read to its end")
    return (stream.raw.digest(), stream.raw.bytesRead)
  }

  /// The reader let go: the thread stops at its next piece.
  func cancel() {
    condition.lock()
    cancelled = true
    condition.broadcast()
    condition.unlock()
  }
}
