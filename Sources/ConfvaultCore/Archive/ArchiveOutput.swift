import Foundation
import Logging

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
  /// - Parameter modificationTime: the mtime of every entry, in seconds since 1970.
  public init(
    manifest: Manifest, modificationTime: Int64, compression: Compression, sink: any ArchiveByteSink,
    destination: String, logger: Logger? = nil
  ) throws {
    self.manifest = manifest
    self.modificationTime = modificationTime
    writer = try ArchiveWriter(sink: sink, compression: compression, destination: destination, logger: logger)
    let manifestBytes = manifest.encoded()
    try writer.beginFile(
      path: Manifest.entryName, size: Int64(manifestBytes.count), mode: .regular, modificationTime: modificationTime)
    try manifestBytes.withUnsafeBytes { try writer.writeData($0) }
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

  /// Ends the archive; it is complete only after this.
  public func finish() throws -> WrittenArchive {
    precondition(next == manifest.files.count, "an archive finished before all its files")
    try writer.close()
    return WrittenArchive(manifest: manifest, bytes: writer.output.bytes, sha256: writer.output.hasher.finalize())
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
  ///
  /// - Throws: `FolderRefusal` for symlinks and special files, `SystemError` for I/O failures,
  ///   `OperationError` when a file changes while it is packed.
  public static func pack(
    folder: String, app: String?, environment: String?, compression: Compression,
    to output: ArchiveOutput, limits: ArchiveLimits = .default
  ) throws -> WrittenArchive {
    let found = try ConfigurationFolder.scan(folder, limits: limits)
    let files = try hash(found)
    let manifest = Manifest(app: app, environment: environment, version: nil, files: files)
    let absolutePaths = Dictionary(uniqueKeysWithValues: found.map { ($0.path, $0.absolutePath) })
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    defer { buffer.deallocate() }
    return try write(
      manifest: manifest, modificationTime: found.map(\.modificationTime).max() ?? 0,
      compression: compression, to: output
    ) { file, write in
      try ConfigurationFolder.stream(absolutePaths[file.path]!, buffer: buffer, write)
    }
  }

  /// The manifest entries of `files`: their size and SHA-256 as read now, on both cores.
  public static func hash(_ files: [FolderFile]) throws -> [ManifestFile] {
    let results = ResultSlots<ManifestFile>(count: files.count)
    let workers = min(max(ProcessInfo.processInfo.activeProcessorCount, 1), 4)
    DispatchQueue.concurrentPerform(iterations: workers) { worker in
      let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
      defer { buffer.deallocate() }
      for index in stride(from: worker, to: files.count, by: workers) {
        let file = files[index]
        results.set(index) {
          var hasher = SHA256Stream()
          var size: Int64 = 0
          try ConfigurationFolder.stream(file.absolutePath, buffer: buffer) { chunk in
            hasher.update(chunk)
            size += Int64(chunk.count)
          }
          return ManifestFile(path: file.path, size: size, mode: file.mode, sha256: hasher.finalize())
        }
      }
    }
    return try results.values()
  }
}

/// One result slot per index, filled by concurrent workers that each own distinct indices.
private final class ResultSlots<Value>: @unchecked Sendable {
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
      sink = FileDescriptorSink(fd: atomic.fileDescriptor, name: path)
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

  /// Makes the output final: a file moved into place, a stream's last piece handed on.
  public func commit() throws {
    try file?.commit()
  }
}
