import Foundation

/// Where an archive is written: a file (atomically) or standard output (`-o -`).
public enum ArchiveOutput: Sendable, Equatable {
  case file(String, replaceExisting: Bool)
  case standardOutput

  public var displayName: String {
    switch self {
    case .file(let path, _): return path
    case .standardOutput: return "standard output"
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

/// Writes Confvault archives: the manifest first, then each file under `config/`, in path byte order.
public enum ConfigurationArchive {
  /// Streams an archive of `manifest`'s files to `output`, fetching each file's bytes through `content`.
  ///
  /// Each file's bytes are checked against the manifest as they are written, so a file that changed
  /// since it was hashed (or a damaged stored blob) stops the write instead of producing an archive
  /// that would fail verification. A file output is atomic: complete at its name, or absent.
  ///
  /// - Parameters:
  ///   - modificationTime: the mtime of every entry, in seconds since 1970.
  ///   - content: streams the bytes of one file through the closure it is given.
  public static func write(
    manifest: Manifest, modificationTime: Int64, compression: Compression, to output: ArchiveOutput,
    content: (ManifestFile, (UnsafeRawBufferPointer) throws -> Void) throws -> Void
  ) throws -> WrittenArchive {
    switch output {
    case .standardOutput:
      let written = try writeEntries(
        manifest: manifest, modificationTime: modificationTime, compression: compression,
        fd: STDOUT_FILENO, destination: output.displayName, content: content)
      return WrittenArchive(manifest: manifest, bytes: written.bytes, sha256: written.hasher.finalize())
    case .file(let path, let replaceExisting):
      let file = try AtomicFile(path: path, replaceExisting: replaceExisting)
      let written = try writeEntries(
        manifest: manifest, modificationTime: modificationTime, compression: compression,
        fd: file.fileDescriptor, destination: path, content: content)
      try file.commit()
      return WrittenArchive(manifest: manifest, bytes: written.bytes, sha256: written.hasher.finalize())
    }
  }

  private static func writeEntries(
    manifest: Manifest, modificationTime: Int64, compression: Compression, fd: Int32,
    destination: String,
    content: (ManifestFile, (UnsafeRawBufferPointer) throws -> Void) throws -> Void
  ) throws -> ArchiveWriter.Output {
    let writer = try ArchiveWriter(fd: fd, compression: compression, destination: destination)
    let manifestBytes = manifest.encoded()
    try writer.writeFile(
      path: Manifest.entryName, size: Int64(manifestBytes.count), mode: .regular,
      modificationTime: modificationTime
    ) { write in
      try manifestBytes.withUnsafeBytes { try write($0) }
    }
    for file in manifest.files {
      try writer.writeFile(
        path: Manifest.configPrefix + file.path, size: file.size, mode: file.mode,
        modificationTime: modificationTime
      ) { write in
        var hasher = SHA256Stream()
        try withoutActuallyEscaping(write) { write in
          try content(file) { chunk in
            hasher.update(chunk)
            try write(chunk)
          }
        }
        let digest = hasher.finalize()
        guard digest == file.sha256 else {
          throw OperationError(
            .operationFailed,
            "`\(file.path)` changed while it was being archived (SHA-256 \(digest), expected \(file.sha256)); nothing was written"
          )
        }
      }
    }
    try writer.close()
    return writer.output
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
