import Foundation

/// A regular file found in a configuration folder.
public struct FolderFile: Sendable, Equatable {
  /// The path relative to the folder, `/`-separated, in NFC form.
  public var path: String
  /// The path on disk, with the name's bytes as the file system has them.
  public var absolutePath: String
  public var mode: FileMode
  public var size: Int64
  /// Seconds since 1970 of the last change of content.
  public var modificationTime: Int64
}

/// What a scan of a configuration folder found.
public struct FolderScan: Sendable, Equatable {
  /// The configuration's files, in path byte order.
  public var files: [FolderFile]
  /// What the ignore rules left out, in path byte order; a folder (with a trailing `/`) stands for
  /// everything in it, which was not looked into.
  public var ignored: [String]
}

/// A folder on disk holding a configuration: regular files only, with UTF-8 relative paths.
public enum ConfigurationFolder {
  /// Every regular file below `root`, in path byte order.
  ///
  /// Empty folders are not part of a configuration and are passed over.
  ///
  /// - Throws: `FolderRefusal` listing every symlink, special file or unusable name found;
  ///   `SystemError` when the folder cannot be read.
  public static func scan(_ root: String, limits: ArchiveLimits = .default) throws -> [FolderFile] {
    try scan(root, limits: limits, rules: nil).files
  }

  /// Every regular file below `root` that `rules` keep, and what they left out.
  ///
  /// A folder the rules leave out is not looked into: what it holds is neither read nor refused. The
  /// checkout record (`.confvault/checkout.json`) is never part of the configuration, whatever the
  /// rules, and is not listed as left out.
  ///
  /// - Throws: as `scan(_:limits:)`, for what the rules keep.
  public static func scan(_ root: String, limits: ArchiveLimits = .default, ignoring rules: IgnoreRules) throws
    -> FolderScan
  {
    try scan(root, limits: limits, rules: rules)
  }

  private static func scan(_ root: String, limits: ArchiveLimits, rules: IgnoreRules?) throws -> FolderScan {
    var info = stat()
    guard stat(root, &info) == 0 else { throw SystemError(.open, root) }
    guard info.st_mode & S_IFMT == S_IFDIR else {
      throw OperationError(.inputUnreadable, "`\(root)` is not a folder")
    }
    var found = FolderScan(files: [], ignored: [])
    var problems: [String] = []
    try walk(root: root, relative: [], limits: limits, rules: rules, found: &found, problems: &problems)
    var files = found.files
    found.ignored.sort(by: EntryPath.byteOrder)
    files.sort { EntryPath.byteOrder($0.path, $1.path) }
    for (previous, next) in zip(files, files.dropFirst()) where previous.path.utf8.elementsEqual(next.path.utf8) {
      problems.append("`\(next.path)`: two names that are the same after Unicode normalisation (NFC)")
    }
    var folded: [String: String] = [:]
    for file in files {
      if let other = folded.updateValue(file.path, forKey: EntryPath.caseFolded(file.path)), other != file.path {
        problems.append(
          "`\(displayName(Array(file.path.utf8)))`: \(ArchiveRefusal.Rule.caseCollision.rawValue) with `\(displayName(Array(other.utf8)))`"
        )
      }
    }
    if !problems.isEmpty { throw FolderRefusal(folder: root, problems: problems) }
    // What an import or a backup's read-back would refuse is refused here, before it is stored.
    guard files.count <= limits.maxFiles else {
      throw OperationError(
        .badInput,
        "`\(root)` holds \(files.count) files, more than the limit of \(limits.maxFiles); nothing was written",
        hint: .raiseLimit(.files))
    }
    var total: Int64 = 0
    for file in files {
      if file.size > limits.maxFileBytes {
        throw OperationError(
          .badInput,
          "`\(file.path)` in `\(root)` has \(file.size) bytes, more than the limit of \(limits.maxFileBytes) bytes per file that an import or a backup's read-back would refuse; nothing was written",
          hint: .raiseLimit(.fileSize))
      }
      total += file.size
      if total > limits.maxTotalBytes {
        throw OperationError(
          .badInput,
          "`\(root)` holds more than the limit of \(limits.maxTotalBytes) bytes in all (at `\(file.path)`); nothing was written",
          hint: .raiseLimit(.totalSize))
      }
    }
    found.files = files
    return found
  }

  private static func walk(
    root: String, relative: [UInt8], limits: ArchiveLimits, rules: IgnoreRules?, found: inout FolderScan,
    problems: inout [String]
  ) throws {
    let folder = relative.isEmpty ? root : root + "/" + String(decoding: relative, as: UTF8.self)
    guard let handle = opendir(folder) else { throw SystemError(.list, folder) }
    defer { closedir(handle) }
    var names: [[UInt8]] = []
    while let entry = readdir(handle) {
      let name = withUnsafePointer(to: &entry.pointee.d_name) {
        $0.withMemoryRebound(to: CChar.self, capacity: 256) { Array(cStringBytes: $0) }
      }
      if name == [0x2E] || name == [0x2E, 0x2E] { continue }
      names.append(name)
    }
    for name in names {
      let path = relative.isEmpty ? name : relative + [0x2F] + name
      let shown = displayName(path)
      guard let text = String(validating: path, as: UTF8.self) else {
        problems.append("`\(shown)`: name is not valid UTF-8")
        continue
      }
      let absolute = root + "/" + text
      var info = stat()
      guard lstat(absolute, &info) == 0 else { throw SystemError(.status, absolute) }
      let isFolder = info.st_mode & S_IFMT == S_IFDIR
      if let rules {
        let normalized = EntryPath.nfc(text)
        if normalized == CheckoutRecord.relativePath && !isFolder { continue }
        if rules.ignores(normalized, isFolder: isFolder) {
          if !(isFolder && normalized == CheckoutRecord.folderName && holdsOnlyTheRecord(absolute)) {
            found.ignored.append(normalized + (isFolder ? "/" : ""))
          }
          continue
        }
      }
      switch info.st_mode & S_IFMT {
      case S_IFDIR:
        try walk(root: root, relative: path, limits: limits, rules: rules, found: &found, problems: &problems)
      case S_IFREG:
        do {
          try EntryPath.validate(relativePath: text, limits: limits)
        } catch let refusal as ArchiveRefusal {
          problems.append("`\(shown)`: \(refusal.rule.rawValue)")
          continue
        }
        found.files.append(
          FolderFile(
            path: EntryPath.nfc(text), absolutePath: absolute, mode: FileMode(permissions: UInt32(info.st_mode)),
            size: Int64(info.st_size), modificationTime: Int64(info.st_mtim.tv_sec)))
      default:
        problems.append(
          "`\(shown)`: \(LibArchive.typeName(UInt32(info.st_mode) & LibArchive.typeMask))")
      }
    }
  }

  /// Whether the checkout record's folder holds the record and nothing else: then leaving it out is
  /// not worth a word.
  private static func holdsOnlyTheRecord(_ folder: String) -> Bool {
    (try? FileManager.default.contentsOfDirectory(atPath: folder)) == [CheckoutRecord.fileName]
  }

  /// Streams the content of the file at `path` in chunks through `body`.
  ///
  /// - Throws: `SystemError` when it cannot be opened or read; a symlink put in its place is refused.
  public static func stream(
    _ path: String, buffer: UnsafeMutableRawBufferPointer,
    _ body: (UnsafeRawBufferPointer) throws -> Void
  ) throws {
    let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
    guard fd >= 0 else { throw SystemError(.open, path) }
    defer { close(fd) }
    while true {
      let count = read(fd, buffer.baseAddress, buffer.count)
      if count == 0 { return }
      if count < 0 {
        if errno == EINTR { continue }
        throw SystemError(.read, path)
      }
      try body(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
    }
  }
}

/// A folder that holds what a configuration cannot (symlinks, devices, sockets, unusable names).
public struct FolderRefusal: ConfvaultError, Equatable {
  public var folder: String
  public var problems: [String]

  public var kind: FailureKind { .badInput }

  public var description: String {
    let shown = problems.prefix(20).map { "  \($0)" }.joined(separator: "\n")
    let more = problems.count > 20 ? "\n  … and \(problems.count - 20) more" : ""
    return
      "folder `\(folder)` holds what a configuration cannot keep (regular files only, UTF-8 names):\n"
      + shown + more + "\nnothing was written"
  }
}
