import Foundation

/// A regular file found in a configuration folder.
///
/// A scan keeps one for every file: 104 bytes and the path's own string, with its fields in the
/// order that leaves the least padding between them.
public struct FolderFile: Sendable, Equatable {
  /// The path relative to the folder, `/`-separated, in NFC form.
  public var path: String
  /// Where the file is on disk. A scan keeps the folder it scanned, which every file shares, rather
  /// than a path of its own per file: a third of what 100,000 files held.
  private(set) var location: Location
  public var mode: FileMode
  /// Whether `status` is one read from the file system, rather than the size and mtime a file
  /// listed otherwise was given.
  private var scanned: Bool
  private var status: FileIdentity

  /// The size, which is the status's: set, it is part of the status a stat cache compares.
  public var size: Int64 {
    get { status.size }
    set { status.size = newValue }
  }

  /// Seconds since 1970 of the last change of content.
  public var modificationTime: Int64 { Int64(status.modified.tv_sec) }

  /// The status the scan read, or the hashing read that followed it (`FolderReading.read`): what
  /// a stat cache compares. Nil for a file listed otherwise.
  ///
  /// Setting a status sets the size and mtime to its own; setting nil keeps only them.
  var identity: FileIdentity? {
    get { scanned ? status : nil }
    set {
      scanned = newValue != nil
      status =
        newValue
        ?? FileIdentity(
          device: 0, inode: 0, size: status.size, modified: timespec(tv_sec: status.modified.tv_sec, tv_nsec: 0),
          changed: timespec())
    }
  }

  enum Location: Sendable, Equatable {
    /// At `relative` below `folder`: the name's bytes as the file system has them, which are the
    /// file's path itself (the same string, kept once) unless NFC changed them.
    case below(folder: String, relative: String)
    /// At an absolute path, for a file listed otherwise than by a scan.
    case at(String)

    /// The path on disk.
    var absolutePath: String {
      switch self {
      case .below(let folder, let relative): return joinedPath(folder, relative.utf8)
      case .at(let absolute): return absolute
      }
    }
  }

  /// The path on disk, with the name's bytes as the file system has them.
  public var absolutePath: String { location.absolutePath }

  public init(path: String, absolutePath: String, mode: FileMode, size: Int64, modificationTime: Int64) {
    self.path = path
    self.mode = mode
    self.scanned = false
    self.status = FileIdentity(
      device: 0, inode: 0, size: size, modified: timespec(tv_sec: Int(modificationTime), tv_nsec: 0),
      changed: timespec())
    self.location = .at(absolutePath)
  }

  /// What a list's place holds once its file was moved out: empty strings, nothing to release.
  static let movedOut = FolderFile(path: "", absolutePath: "", mode: .regular, size: 0, modificationTime: 0)

  /// A file a scan of `folder` found at `relative`, whose status is `info`.
  init(path: String, folder: String, relative: String, mode: UInt32, status: FileIdentity) {
    self.path = path
    self.mode = FileMode(permissions: mode)
    self.scanned = true
    self.status = status
    // The path's own string where the bytes are the same (by bytes: `==` takes a name and its NFC
    // form as equal), so that most files keep one.
    self.location = .below(folder: folder, relative: EntryPath.sameBytes(relative, path) ? path : relative)
  }
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
    var walked = Walked()
    var problems: [String] = []
    try walk(
      root: root, relative: "", limits: limits, rules: rules, found: &walked, problems: &problems, parallel: true)
    var found = FolderScan(files: [], ignored: walked.ignored)
    // Each folder's files are moved into the one list, not copied (a copy retained and released
    // their strings, a tenth of a one-file push's scan), and its list let go at once: held to the
    // end, they doubled the scan's peak.
    var files = [FolderFile](unsafeUninitializedCapacity: walked.files.reduce(0) { $0 + $1.count }) { all, count in
      for index in walked.files.indices {
        walked.files[index].withUnsafeMutableBufferPointer { chunk in
          guard let from = chunk.baseAddress, let to = all.baseAddress else { return }
          (to + count).moveInitialize(from: from, count: chunk.count)
          count += chunk.count
          // What is left must be initialized: files that hold nothing to release.
          chunk.initialize(repeating: FolderFile.movedOut)
        }
        walked.files[index] = []
      }
    }
    walked = Walked()
    found.ignored.sort(by: EntryPath.byteOrder)
    // The walk lists files in order but for names that NFC changes. (Here and below the files are
    // looked at by index: a loop over them copied each file's record, strings and all.)
    if files.indices.dropFirst().contains(where: { EntryPath.byteOrder(files[$0].path, files[$0 - 1].path) }) {
      files.sort { EntryPath.byteOrder($0.path, $1.path) }
    }
    for index in files.indices.dropFirst() where EntryPath.sameBytes(files[index - 1].path, files[index].path) {
      problems.append("`\(files[index].path)`: two names that are the same after Unicode normalisation (NFC)")
    }
    let paths = files.map(\.path)
    for (later, earlier) in EntryPath.caseCollisions(inSorted: paths).sorted(by: { $0.key < $1.key })
    where !EntryPath.sameBytes(paths[later], paths[earlier]) {
      problems.append(
        "`\(displayName(Array(paths[later].utf8)))`: \(ArchiveRefusal.Rule.caseCollision.rawValue) with `\(displayName(Array(paths[earlier].utf8)))`"
      )
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
    for index in files.indices {
      let (path, size) = (files[index].path, files[index].size)
      if size > limits.maxFileBytes {
        throw OperationError(
          .badInput,
          "`\(path)` in `\(root)` has \(size) bytes, more than the limit of \(limits.maxFileBytes) bytes per file that an import or a backup's read-back would refuse; nothing was written",
          hint: .raiseLimit(.fileSize))
      }
      total += size
      if total > limits.maxTotalBytes {
        throw OperationError(
          .badInput,
          "`\(root)` holds more than the limit of \(limits.maxTotalBytes) bytes in all (at `\(path)`); nothing was written",
          hint: .raiseLimit(.totalSize))
      }
    }
    found.files = files
    // A pack of 100,000 files peaked 11 MB lower for it.
    FreedMemory.giveBack()
    return found
  }

  /// What a walk found: the files as the lists of each folder's own files in path order, put
  /// together once at the end (a list of 20,000 files copied at every level of folders was a tenth
  /// of a scan), and what was left out.
  private struct Walked: Sendable {
    var files: [[FolderFile]] = []
    var ignored: [String] = []
  }

  /// Lists the folder `relative` below `root` into `found` and `problems`, in path byte order.
  ///
  /// With `parallel`, the folders met are walked on several cores (as `git status` reads its
  /// files' status on several threads), or the one folder met is walked so in its turn; their
  /// findings are put back in order.
  private static func walk(
    root: String, relative: String, limits: ArchiveLimits, rules: IgnoreRules?, found: inout Walked,
    problems: inout [String], parallel: Bool = false
  ) throws {
    let folder = relative.isEmpty ? root : root + "/" + relative
    guard let handle = opendir(folder) else { throw SystemError(.list, folder) }
    defer { closedir(handle) }
    // Each entry's status is read relative to the folder (no lookup of the whole path), and the
    // entries go in path byte order, a folder sorting as its name and "/": the files come out in
    // path byte order for names in NFC form, and the scan needs no sort of every path.
    // The names lie back to back in one list (a folder's with its "/"), not a list each, and each
    // entry keeps what of its status a file keeps.
    var names: [UInt8] = []
    var entries: [(name: Range<Int>, key: Range<Int>, mode: UInt32, status: FileIdentity)] = []
    while let entry = readdir(handle) {
      try withUnsafePointer(to: &entry.pointee.d_name) {
        try $0.withMemoryRebound(to: CChar.self, capacity: 256) { name in
          let length = strlen(name)
          guard !(name[0] == 0x2E && (length == 1 || (length == 2 && name[1] == 0x2E))) else { return }
          var info = stat()
          guard fstatat(dirfd(handle), name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
            throw SystemError(.status, folder + "/" + String(cString: name))
          }
          let start = names.count
          names.append(contentsOf: UnsafeRawBufferPointer(start: name, count: length))
          if info.st_mode & S_IFMT == S_IFDIR { names.append(0x2F) }
          entries.append((start..<start + length, start..<names.count, UInt32(info.st_mode), FileIdentity(info)))
        }
      }
    }
    let order = names.withUnsafeBufferPointer { names in
      entries.indices.sorted { a, b in
        EntryPath.compareBytes(
          UnsafeBufferPointer(rebasing: names[entries[a].key]), UnsafeBufferPointer(rebasing: names[entries[b].key]))
          < 0
      }
    }
    // The folders left for later, with where their findings go in `found` and `problems`.
    var later: [(files: Int, ignored: Int, problems: Int, relative: String)] = []
    // This folder's files since its last folder, which go in `found` before the next folder's.
    var files: [FolderFile] = []
    files.reserveCapacity(entries.count)
    func flushFiles() {
      guard !files.isEmpty else { return }
      found.files.append(files)
      files = []
    }
    try names.withUnsafeBufferPointer { names in
      for index in order {
        let name = UnsafeBufferPointer(rebasing: names[entries[index].name])
        let mode = entries[index].mode
        // The folder's own path is valid UTF-8: a folder whose name is not is refused, not walked.
        let path = { relative.isEmpty ? Array(name) : Array(relative.utf8) + [0x2F] + name }
        // An ASCII name, the usual one, is valid as it is; its path is made in one piece.
        guard name.allSatisfy({ $0 < 0x80 }) || String(validating: name, as: UTF8.self) != nil else {
          problems.append("`\(displayName(path()))`: name is not valid UTF-8")
          continue
        }
        let text = relative.isEmpty ? String(decoding: name, as: UTF8.self) : joinedPath(relative, name)
        let isFolder = mode & UInt32(S_IFMT) == UInt32(S_IFDIR)
        let normalized = EntryPath.nfc(text)
        if let rules {
          if normalized == CheckoutRecord.relativePath && !isFolder { continue }
          if rules.ignores(normalized, isFolder: isFolder) {
            if !(isFolder && normalized == CheckoutRecord.folderName && holdsOnlyTheRecord(root + "/" + text)) {
              found.ignored.append(normalized + (isFolder ? "/" : ""))
            }
            continue
          }
        }
        switch mode_t(mode) & S_IFMT {
        case S_IFDIR where parallel:
          flushFiles()
          later.append((found.files.count, found.ignored.count, problems.count, text))
        case S_IFDIR:
          flushFiles()
          try walk(root: root, relative: text, limits: limits, rules: rules, found: &found, problems: &problems)
        case S_IFREG:
          do {
            try EntryPath.validate(relativePath: text, limits: limits)
          } catch let refusal as ArchiveRefusal {
            problems.append("`\(displayName(path()))`: \(refusal.rule.rawValue)")
            continue
          }
          files.append(
            FolderFile(path: normalized, folder: root, relative: text, mode: mode, status: entries[index].status))
        default:
          problems.append("`\(displayName(path()))`: \(LibArchive.typeName(mode & LibArchive.typeMask))")
        }
      }
    }
    flushFiles()
    guard !later.isEmpty else { return }
    let folderPaths = later.map(\.relative)
    // A lone folder (beside ignored ones) is walked so in its turn, its own folders on several
    // cores; down to a few levels only, so that a deep chain of lone folders nests no deeper.
    let alone = folderPaths.count == 1 && relative.utf8.count(where: { $0 == 0x2F }) < 3
    let walked = ResultSlots<(found: Walked, problems: [String])>(count: folderPaths.count)
    DispatchQueue.concurrentPerform(iterations: folderPaths.count) { index in
      walked.set(index) {
        var (inner, innerProblems) = (Walked(), [String]())
        try walk(
          root: root, relative: folderPaths[index], limits: limits, rules: rules, found: &inner,
          problems: &innerProblems, parallel: alone)
        return (inner, innerProblems)
      }
    }
    let results = try walked.values()
    found.files = merged(found.files, at: later.map(\.files), results.map(\.found.files))
    found.ignored = merged(found.ignored, at: later.map(\.ignored), results.map(\.found.ignored))
    problems = merged(problems, at: later.map(\.problems), results.map(\.problems))
  }

  /// `mine` with each of `theirs` put in at the offset of `mine` given for it (offsets ascending).
  private static func merged<Element>(_ mine: [Element], at offsets: [Int], _ theirs: [[Element]]) -> [Element] {
    var all: [Element] = []
    all.reserveCapacity(mine.count + theirs.reduce(0) { $0 + $1.count })
    var start = 0
    for (offset, inner) in zip(offsets, theirs) {
      all += mine[start..<offset]
      all += inner
      start = offset
    }
    return all + mine[start...]
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
    try readAll(fd, path: path, buffer: buffer, body)
  }
}

/// Reads the open file `fd` (which is `path`) to its end through `buffer`, handing each piece read
/// to `body`.
///
/// - Throws: `SystemError` when it cannot be read.
func readAll(
  _ fd: Int32, path: String, buffer: UnsafeMutableRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> Void
) throws {
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

/// `folder`, a `/` and `name`, made at once: `+` would leave the string room to grow, and a scan
/// keeps a path for every file.
func joinedPath(_ folder: String, _ name: some Collection<UInt8>) -> String {
  String(unsafeUninitializedCapacity: folder.utf8.count + 1 + name.count) { buffer in
    let slash = buffer.initialize(fromContentsOf: folder.utf8)
    buffer[slash] = 0x2F
    return slash + 1 + UnsafeMutableBufferPointer(rebasing: buffer[(slash + 1)...]).initialize(fromContentsOf: name)
  }
}
