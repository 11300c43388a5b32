import CArchive
import Foundation

/// Whether an archive is expected to carry a manifest.
public enum ArchiveLayout: Sendable, Equatable {
  /// A Confvault archive: `confvault.json` first, then `config/<path>` entries matching it.
  case manifest
  /// An ordinary tar of a configuration folder (`tar czf`); a single top folder is stripped.
  case plain
}

/// Receives each file's bytes while an archive streams, before the archive is known to be good.
///
/// The reader's verdict comes only after the last entry: a sink must not make anything visible until
/// `ArchiveReader.read` returns. Paths are the archive's own (in a plain archive, before the top folder
/// is stripped); the final paths are in `ArchiveContents.files`.
public protocol ArchiveFileSink: AnyObject {
  func beginFile(path: String, mode: FileMode) throws
  func write(_ bytes: UnsafeRawBufferPointer) throws
  func endFile(_ file: ManifestFile) throws
}

/// What a fully checked archive holds.
public struct ArchiveContents: Sendable {
  /// The manifest, for an archive of the manifest layout.
  public var manifest: Manifest?
  /// Every file, in path byte order, with the size and digest of the bytes actually read.
  public var files: [ManifestFile]
  public var treeDigest: TreeDigest
  /// The SHA-256 of the archive file itself.
  public var archiveSHA256: SHA256Hex
  /// The archive's size as read (compressed).
  public var archiveBytes: Int64
  /// The compression found in the content.
  public var compression: Compression
  /// The folder stripped from a plain archive's paths, if any.
  public var strippedFolder: String?

  public var totalSize: Int64 { files.reduce(0) { $0 + $1.size } }
}

/// Reads an archive from outside in one streaming pass and enforces every rule of docs/archive-format.md on it.
///
/// Decides on the bytes actually read: sizes and digests are computed as data streams, limits are
/// counted on decompressed bytes as they come, so a decompression bomb stops at the limit.
public struct ArchiveReader: Sendable {
  public var limits: ArchiveLimits
  public var layout: ArchiveLayout
  /// Whether an archive of no files is accepted: importing one empties an environment, which is
  /// almost always a mistake, so it must be asked for (a backup's read-back of an empty version does).
  public var allowEmpty: Bool

  public init(limits: ArchiveLimits = .default, layout: ArchiveLayout = .manifest, allowEmpty: Bool = false) {
    self.limits = limits
    self.layout = layout
    self.allowEmpty = allowEmpty
  }

  /// Reads and checks the whole archive, handing file bytes to `sink` as they stream.
  ///
  /// - Throws: `ArchiveRefusal` for a bad or unsafe archive, `SystemError` when the source cannot be
  ///   read, or whatever the sink throws.
  public func read(
    from source: ArchiveSource, into sink: (any ArchiveFileSink)? = nil
  ) throws -> ArchiveContents {
    let input = try TarInput(ArchiveInputStream(source))
    let session = try ReadSession(input: input, limits: limits, layout: layout, sink: sink)
    let contents = try session.run()
    if contents.files.isEmpty && !allowEmpty {
      throw ArchiveRefusal(
        entry: nil, rule: .noFiles, detail: "an empty configuration would empty an environment",
        hint: .allowEmpty)
    }
    return contents
  }
}

private func readCallback(
  _ archive: OpaquePointer?, _ context: UnsafeMutableRawPointer?,
  _ buffer: UnsafeMutablePointer<UnsafeRawPointer?>?
) -> la_ssize_t {
  let input = Unmanaged<TarInput>.fromOpaque(context!).takeUnretainedValue()
  guard let chunk = input.next() else { return -1 }
  buffer?.pointee = chunk.baseAddress
  return chunk.count
}

/// One pass over one archive: owns the libarchive handle and the checking state.
private final class ReadSession {
  private let archive: OpaquePointer
  private let input: TarInput
  private let limits: ArchiveLimits
  private let layout: ArchiveLayout
  private let sink: (any ArchiveFileSink)?
  private let meter = ProgressMeter.current
  private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 << 10, alignment: 16)

  private var manifest: Manifest?
  /// Where the next entry is looked for first in `manifest.files`: after the last one read, since
  /// entries usually come in the manifest's order.
  private var expectedNext = 0
  /// Whether each of the manifest's files was read.
  private var wasRead: [Bool] = []
  /// How many files were read.
  private var filesRead = 0
  /// The files of a plain archive, as read. (A manifest's files are checked against it one by one:
  /// at the end they are the manifest's own.)
  private var files: [ManifestFile] = []
  /// Each path of a plain archive read, and the same by its case-folded form.
  private var seen = Set<String>()
  private var folded: [String: String] = [:]
  private var entries = 0
  private var totalBytes: Int64 = 0
  private var sawFileEntry = false
  /// Whether every name began with `./`: a tar of a folder's contents, whose top folder is real.
  private var allNamesDotSlash = true

  init(
    input: TarInput, limits: ArchiveLimits, layout: ArchiveLayout,
    sink: (any ArchiveFileSink)?
  ) throws {
    LibArchive.prepare()
    guard let archive = archive_read_new() else {
      throw OperationError(.ioError, "libarchive could not allocate a reader")
    }
    self.archive = archive
    self.input = input
    self.limits = limits
    self.layout = layout
    self.sink = sink
    // Tar only, and no filter at all: `TarInput` has undone the one compression layer, so libarchive
    // can never decompress a second one, nor run an external program on untrusted input.
    guard archive_read_support_format_tar(archive) == ARCHIVE_OK else {
      // Every stored property is set: deinit frees the handle.
      throw OperationError(
        .internal, "libarchive cannot read tar: \(LibArchive.message(archive, fallback: "no reason given"))")
    }
    let context = Unmanaged.passUnretained(input).toOpaque()
    if archive_read_open(archive, context, nil, readCallback, nil) != ARCHIVE_OK {
      throw failure(entry: nil, whileReadingHeader: true)
    }
  }

  deinit {
    archive_read_free(archive)
    buffer.deallocate()
  }

  func run() throws -> ArchiveContents {
    var entry: OpaquePointer?
    while true {
      let result = archive_read_next_header(archive, &entry)
      if result == ARCHIVE_EOF {
        try input.finish()
        break
      }
      let name = entry.flatMap { archive_entry_pathname($0) }.map { Array(cStringBytes: $0) }
      if result == ARCHIVE_WARN {
        throw ArchiveRefusal(
          entry: name.map(displayName), rule: .suspiciousHeader,
          detail: LibArchive.message(archive, fallback: "libarchive warned"))
      }
      guard result == ARCHIVE_OK, let entry else {
        throw failure(entry: name.map(displayName), whileReadingHeader: true)
      }
      guard let name else {
        throw ArchiveRefusal(entry: nil, rule: .notUTF8, detail: "an entry has no readable name")
      }
      try handle(entry, name: name)
    }
    return try finish()
  }

  private func handle(_ entry: OpaquePointer, name: [UInt8]) throws {
    // The name as shown in a refusal, made only for one.
    let shown = { displayName(name) }
    entries += 1
    // Folder entries count too, so a flood of empty headers stops; the bound saturates for huge limits.
    let (doubled, overflow) = limits.maxFiles.multipliedReportingOverflow(by: 2)
    guard overflow || entries <= doubled + 16 else {
      throw ArchiveRefusal(
        entry: shown(), rule: .tooManyFiles, detail: "limit \(limits.maxFiles)", hint: .raiseLimit(.files))
    }
    let listed = listedNext(named: name)
    let path =
      try listed.map { Manifest.configPrefix + manifest!.files[$0].path }
      ?? EntryPath.nfc(
        EntryPath.normalized(
          entryName: name, limits: limits, below: layout == .manifest ? Manifest.configPrefix : ""))
    if name.count < 2 || name[0] != UInt8(ascii: ".") || name[1] != UInt8(ascii: "/") { allNamesDotSlash = false }
    if archive_entry_hardlink(entry) != nil {
      throw ArchiveRefusal(
        entry: shown(), rule: .notRegularFile, detail: "hard link; only regular files are allowed")
    }
    let type = archive_entry_filetype(entry) & LibArchive.typeMask
    if type == LibArchive.directory {
      // Folders are implied by their files; other writers add entries for them, which carry nothing.
      // After the manifest, a Confvault archive's folders can only be `config/` and what is below it
      // (before it, the first file decides: a plain tar gets told to use --plain).
      if manifest != nil && !path.isEmpty && path != "config" && !path.hasPrefix(Manifest.configPrefix) {
        throw ArchiveRefusal(entry: shown(), rule: .outsideConfig)
      }
      return
    }
    guard type == LibArchive.regular else {
      throw ArchiveRefusal(
        entry: shown(), rule: .notRegularFile,
        detail: "\(LibArchive.typeName(type)); only regular files are allowed")
    }
    if archive_entry_sparse_count(entry) > 0 {
      throw ArchiveRefusal(entry: shown(), rule: .sparse, detail: "readers fill its holes differently")
    }
    let declaredSize = archive_entry_size_is_set(entry) != 0 ? archive_entry_size(entry) : nil
    guard !path.isEmpty else { throw ArchiveRefusal(entry: shown(), rule: .emptyComponent) }
    let mode = FileMode(permissions: UInt32(archive_entry_perm(entry)))
    let isFirstFile = !sawFileEntry
    sawFileEntry = true

    switch layout {
    case .plain:
      try readFile(path: path, shown: shown, mode: mode, declaredSize: declaredSize, expected: nil)
    case .manifest:
      if path == Manifest.entryName {
        guard isFirstFile else { throw ArchiveRefusal(entry: shown(), rule: .manifestRepeated) }
        try readManifest(declaredSize: declaredSize)
        return
      }
      guard manifest != nil else {
        throw ArchiveRefusal(
          entry: shown(), rule: .manifestMissing,
          detail: "the first entry is `\(shown())`", hint: .readAsPlain)
      }
      guard path.hasPrefix(Manifest.configPrefix) else {
        throw ArchiveRefusal(entry: shown(), rule: .outsideConfig)
      }
      guard let position = listed ?? position(of: String(path.dropFirst(Manifest.configPrefix.count))) else {
        throw ArchiveRefusal(entry: shown(), rule: .notInManifest)
      }
      guard !wasRead[position] else { throw ArchiveRefusal(entry: shown(), rule: .duplicatePath) }
      wasRead[position] = true
      expectedNext = position + 1
      let expected = manifest!.files[position]
      try readFile(path: expected.path, shown: shown, mode: mode, declaredSize: declaredSize, expected: expected)
    }
  }

  private func readManifest(declaredSize: Int64?) throws {
    // Decoded as it streams: the document is never held whole.
    var bytesRead = 0
    let sizeHint = Int(clamping: min(declaredSize ?? 0, Int64(limits.maxManifestBytes)))
    let manifest = try Manifest.decode(sizeHint: sizeHint, limits: limits) {
      let count = archive_read_data(archive, buffer.baseAddress, buffer.count)
      guard count >= 0 else { throw failure(entry: Manifest.entryName, whileReadingHeader: false) }
      bytesRead += count
      guard bytesRead <= limits.maxManifestBytes else {
        throw ArchiveRefusal(
          entry: Manifest.entryName, rule: .fileTooLarge,
          detail: "manifest over \(limits.maxManifestBytes) bytes")
      }
      return UnsafeRawBufferPointer(rebasing: buffer[0..<count])
    }
    self.manifest = manifest
    wasRead = Array(repeating: false, count: manifest.files.count)
  }

  /// The position of the file the manifest lists after the last one read, when `name` is exactly
  /// `config/` and its path: a name that passed every check of a name as the manifest was read, so
  /// it is not checked again.
  private func listedNext(named name: [UInt8]) -> Int? {
    guard let files = manifest?.files, expectedNext < files.count else { return nil }
    let prefix = Manifest.configPrefix.utf8
    let path = files[expectedNext].path.utf8
    guard name.count == prefix.count + path.count, name.starts(with: prefix) else { return nil }
    let same = name.withUnsafeBytes { name in
      path.withContiguousStorageIfAvailable { path in
        path.isEmpty || memcmp(name.baseAddress! + prefix.count, path.baseAddress!, path.count) == 0
      }
    }
    return same ?? name[prefix.count...].elementsEqual(path) ? expectedNext : nil
  }

  /// The position of `path` in the manifest's files (in path byte order, each once, as
  /// `Manifest.decode` checked), found by halves.
  private func position(of path: String) -> Int? {
    guard let files = manifest?.files else { return nil }
    let position = files.partitionPoint { EntryPath.byteOrder($0.path, path) }
    return position < files.count && files[position].path == path ? position : nil
  }

  private func readFile(
    path: String, shown: () -> String, mode: FileMode, declaredSize: Int64?, expected: ManifestFile?
  ) throws {
    if expected == nil {
      // A manifest's files were checked for these as it was decoded, and each one is read once.
      guard seen.insert(path).inserted else {
        throw ArchiveRefusal(entry: shown(), rule: .duplicatePath)
      }
      if let other = folded.updateValue(path, forKey: EntryPath.caseFolded(path)) {
        throw ArchiveRefusal(entry: shown(), rule: .caseCollision, detail: "and `\(displayName(Array(other.utf8)))`")
      }
    }
    guard filesRead < limits.maxFiles else {
      throw ArchiveRefusal(
        entry: shown(), rule: .tooManyFiles, detail: "limit \(limits.maxFiles)", hint: .raiseLimit(.files))
    }
    if let expected, expected.mode != mode {
      throw ArchiveRefusal(
        entry: shown(), rule: .modeMismatch,
        detail: "manifest says \(expected.mode.rawValue), entry is \(mode.rawValue)")
    }
    try sink?.beginFile(path: path, mode: mode)
    var hasher = SHA256Stream()
    var size: Int64 = 0
    try streamData(shown: shown) { chunk in
      size += Int64(chunk.count)
      totalBytes += Int64(chunk.count)
      if let expected, size > expected.size {
        throw ArchiveRefusal(
          entry: shown(), rule: .sizeMismatch,
          detail: "more than the \(expected.size) bytes the manifest says")
      }
      if size > limits.maxFileBytes {
        throw ArchiveRefusal(
          entry: shown(), rule: .fileTooLarge, detail: "over \(limits.maxFileBytes) bytes",
          hint: .raiseLimit(.fileSize))
      }
      if totalBytes > limits.maxTotalBytes {
        throw ArchiveRefusal(
          entry: shown(), rule: .totalTooLarge, detail: "over \(limits.maxTotalBytes) bytes in all",
          hint: .raiseLimit(.totalSize))
      }
      hasher.update(chunk)
      try sink?.write(chunk)
      meter?.add(bytes: Int64(chunk.count))
    }
    if let declaredSize, declaredSize != size {
      throw ArchiveRefusal(
        entry: shown(), rule: .corrupt, detail: "its header says \(declaredSize) bytes, its data has \(size)")
    }
    let file = ManifestFile(path: path, size: size, mode: mode, sha256: hasher.finalize())
    if let expected {
      guard expected.size == size else {
        throw ArchiveRefusal(
          entry: shown(), rule: .sizeMismatch,
          detail: "manifest says \(expected.size) bytes, entry has \(size)")
      }
      guard expected.sha256 == file.sha256 else {
        throw ArchiveRefusal(
          entry: shown(), rule: .checksumMismatch,
          detail: "manifest says \(expected.sha256), content is \(file.sha256)")
      }
    }
    try sink?.endFile(file)
    meter?.add(files: 1)
    filesRead += 1
    if expected == nil { files.append(file) }
  }

  /// Streams the current entry's data through `body`, chunk by chunk, as libarchive decompresses it.
  private func streamData(shown: () -> String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
    while true {
      let count = archive_read_data(archive, buffer.baseAddress, buffer.count)
      if count == 0 { return }
      guard count > 0 else { throw failure(entry: shown(), whileReadingHeader: false) }
      try body(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
    }
  }

  private func finish() throws -> ArchiveContents {
    var files = self.files
    var stripped: String?
    let treeDigest: TreeDigest
    switch layout {
    case .manifest:
      guard let manifest else {
        throw ArchiveRefusal(
          entry: nil, rule: .manifestMissing,
          detail: "the archive holds no files", hint: .readAsPlain)
      }
      if let missing = wasRead.firstIndex(of: false) {
        let more = manifest.files.count - filesRead - 1
        throw ArchiveRefusal(
          entry: Manifest.configPrefix + manifest.files[missing].path, rule: .missingFile,
          detail: more > 0 ? "and \(more) more" : nil)
      }
      // Each file read had the path, size, mode and SHA-256 the manifest lists, and each listed file
      // was read once: the files read are the manifest's, whose tree digest `Manifest.decode` checked.
      files = manifest.files
      treeDigest = manifest.treeDigest
    case .plain:
      guard !files.isEmpty else { throw ArchiveRefusal(entry: nil, rule: .noFiles) }
      if !allNamesDotSlash { (files, stripped) = stripSingleTopFolder(files) }
      files.sort { EntryPath.byteOrder($0.path, $1.path) }
      if let conflict = EntryPath.fileAndFolderConflict(in: files.map(\.path)) {
        throw ArchiveRefusal(
          entry: conflict.file, rule: .fileAndFolder, detail: "`\(conflict.inside)` is inside it")
      }
      treeDigest = TreeDigest(sortedFiles: files)
    }
    let archive = input.archiveDigest()
    return ArchiveContents(
      manifest: manifest, files: files, treeDigest: treeDigest,
      archiveSHA256: archive.sha256, archiveBytes: archive.bytes, compression: input.compression,
      strippedFolder: stripped)
  }

  /// A plain tar of `app/` holds `app/settings.yaml`: its configuration starts below `app/`.
  private func stripSingleTopFolder(_ files: [ManifestFile]) -> ([ManifestFile], String?) {
    guard let first = files.first, let slash = first.path.firstIndex(of: "/") else {
      return (files, nil)
    }
    let top = first.path[..<slash] + "/"
    guard files.allSatisfy({ $0.path.hasPrefix(top) }) else { return (files, nil) }
    let renamed = files.map { file in
      var file = file
      file.path = String(file.path.dropFirst(top.count))
      return file
    }
    return (renamed, String(top.dropLast()))
  }

  /// Why reading stopped: the stream's own failure (a refusal of the decoder or the header guard, a
  /// read error) first, then libarchive's words.
  private func failure(entry: String?, whileReadingHeader: Bool) -> any Error {
    if let failure = input.failure {
      // The stream's refusals concern the archive as a whole; name the entry being read, if any.
      if var refusal = failure as? ArchiveRefusal, refusal.entry == nil, refusal.rule == .corrupt {
        refusal.entry = entry
        return refusal
      }
      return failure
    }
    let message = LibArchive.message(archive, fallback: "the tar stream breaks here")
    if whileReadingHeader && filesRead == 0 && manifest == nil
      && message.contains("Unrecognized archive format")
    {
      return ArchiveRefusal(entry: nil, rule: .notAnArchive, detail: message)
    }
    return ArchiveRefusal(entry: entry, rule: .corrupt, detail: message)
  }
}

extension Array where Element == UInt8 {
  /// The bytes of a NUL-terminated C string, without the NUL.
  init(cStringBytes pointer: UnsafePointer<CChar>) {
    let length = strlen(pointer)
    self = pointer.withMemoryRebound(to: UInt8.self, capacity: length) {
      Array(UnsafeBufferPointer(start: $0, count: length))
    }
  }
}
