import Foundation

/// One file of a configuration as a manifest lists it.
public struct ManifestFile: Sendable, Hashable, Codable {
  public var path: String
  public var size: Int64
  public var mode: FileMode
  public var sha256: SHA256Hex

  public init(path: String, size: Int64, mode: FileMode, sha256: SHA256Hex) {
    self.path = path
    self.size = size
    self.mode = mode
    self.sha256 = sha256
  }

  /// What stands in a list for a file until it is read: no path, no bytes.
  static let unread = ManifestFile(path: "", size: 0, mode: .regular, sha256: SHA256Hex.of(Data()))
}

/// The `confvault.json` entry that opens every Confvault archive (format version 1, docs/archive-format.md).
public struct Manifest: Sendable, Equatable {
  /// What the manifest says of the version an archive was exported from.
  public struct VersionInfo: Sendable, Equatable, Codable {
    public var number: Int
    public var author: String
    public var createdAt: Date
    public var comment: String
    public var origin: String
    @ExplicitNull public var syncedAt: Date?

    public init(
      number: Int, author: String, createdAt: Date, comment: String, origin: String,
      syncedAt: Date?
    ) {
      self.number = number
      self.author = author
      self.createdAt = createdAt
      self.comment = comment
      self.origin = origin
      self.syncedAt = syncedAt
    }

    enum CodingKeys: String, CodingKey {
      case number, author, createdAt, comment, origin, syncedAt
    }

    public init(from decoder: any Decoder) throws {
      let container = try decoder.container(keyedBy: CodingKeys.self)
      number = try container.decode(Int.self, forKey: .number)
      author = try container.decode(String.self, forKey: .author)
      createdAt = try container.decode(Date.self, forKey: .createdAt)
      comment = try container.decodeIfPresent(String.self, forKey: .comment) ?? ""
      origin = try container.decode(String.self, forKey: .origin)
      syncedAt = try container.decodeIfPresent(Date.self, forKey: .syncedAt)
    }

  }

  public static let formatName = "confvault-archive"
  public static let currentFormatVersion = 1
  public static let entryName = "confvault.json"
  /// Every configuration file's entry is this prefix followed by its path.
  public static let configPrefix = "config/"

  public var format: String = Manifest.formatName
  public var formatVersion: Int = Manifest.currentFormatVersion
  public var generator: String
  @ExplicitNull public var app: String?
  @ExplicitNull public var environment: String?
  @ExplicitNull public var version: VersionInfo?
  public var fileCount: Int
  public var totalSize: Int64
  public var treeDigest: TreeDigest
  public var files: [ManifestFile]

  /// A manifest for `files`, which it sorts by path; counts, size and tree digest are derived.
  public init(
    generator: String = "confvault \(ConfvaultInfo.version)", app: String?, environment: String?,
    version: VersionInfo?, files: [ManifestFile]
  ) {
    self.generator = generator
    self.app = app
    self.environment = environment
    self.version = version
    let sorted = files.inPathOrder
    self.files = sorted
    self.fileCount = files.count
    self.totalSize = files.reduce(0) { $0 + $1.size }
    self.treeDigest = TreeDigest(sortedFiles: sorted)
  }

  /// The manifest's bytes: UTF-8 JSON with sorted keys, the same for the same manifest every time.
  public func encoded() -> Data { ManifestEncoder(self).data() }

  /// Reads and checks a manifest's bytes.
  ///
  /// The files come out in path byte order, whatever the order they were listed in.
  ///
  /// - Throws: `ArchiveRefusal` when it is not JSON, of another format, of a newer format version,
  ///   or inconsistent with itself (counts, sizes, tree digest, paths, limits).
  public static func decode(_ data: Data, limits: ArchiveLimits) throws -> Manifest {
    try data.withUnsafeBytes { bytes in
      var given = false
      return try decode(sizeHint: bytes.count, limits: limits) {
        defer { given = true }
        return given ? UnsafeRawBufferPointer(start: nil, count: 0) : bytes
      }
    }
  }

  /// Reads and checks a manifest as it streams out of an archive, a piece at a time: the document is
  /// never held whole.
  ///
  /// - Parameters:
  ///   - sizeHint: about how many bytes the document has (its entry's size), to reserve the file list.
  ///   - source: gives the next piece, empty at the end; a piece stays valid until the next call.
  /// - Throws: what `decode(_:limits:)` throws, or what `source` throws.
  static func decode(
    sizeHint: Int, limits: ArchiveLimits, reading source: ManifestDecoder.Source
  ) throws -> Manifest {
    func invalid(_ detail: String) -> ArchiveRefusal {
      ArchiveRefusal(entry: entryName, rule: .manifestInvalid, detail: detail)
    }
    let fields: ManifestDecoder.Fields
    do {
      fields = try ManifestDecoder.fields(sizeHint: sizeHint, reading: source)
    } catch let encoding as ManifestEncodingCheck.Problem {
      throw invalid(encoding.problem)
    } catch let duplicate as ManifestDecoder.DuplicateKey {
      throw invalid("the key `\(displayName(Array(duplicate.key.utf8)))` appears twice in one object")
    } catch let syntax as ManifestDecoder.SyntaxError {
      throw invalid("not a JSON object: \(syntax.problem)")
    }
    guard fields.formatIsString else { throw invalid("`format`: expected a string") }
    guard fields.format == formatName else {
      throw ArchiveRefusal(
        entry: entryName, rule: .manifestOtherFormat,
        detail:
          "format is \(fields.format.map { "`\(displayName(Array($0.utf8)))`" } ?? "missing"), expected `\(formatName)`"
      )
    }
    guard let formatVersion = fields.formatVersion, formatVersion >= 1 else {
      throw invalid("formatVersion missing or below 1")
    }
    guard formatVersion <= currentFormatVersion else {
      throw ArchiveRefusal(
        entry: entryName, rule: .manifestNewerVersion,
        detail:
          "formatVersion \(formatVersion), this confvault reads up to \(currentFormatVersion); upgrade confvault"
      )
    }
    if let problem = fields.fieldError { throw invalid(problem) }
    guard let fileCount = fields.fileCount, let totalSize = fields.totalSize, let treeDigest = fields.treeDigest,
      var files = fields.files
    else { throw invalid("a required field is missing") }
    if !files.isInPathOrder { files.sort { EntryPath.byteOrder($0.path, $1.path) } }
    let manifest = Manifest(
      formatVersion: formatVersion, generator: fields.generator, app: fields.app, environment: fields.environment,
      version: fields.version, fileCount: fileCount, totalSize: totalSize, treeDigest: treeDigest, files: files)
    try manifest.checkNames()
    try manifest.checkConsistency(limits: limits)
    return manifest
  }

  /// A decoded manifest, its fields as read.
  private init(
    formatVersion: Int, generator: String, app: String?, environment: String?, version: VersionInfo?,
    fileCount: Int, totalSize: Int64, treeDigest: TreeDigest, files: [ManifestFile]
  ) {
    self.formatVersion = formatVersion
    self.generator = generator
    self.app = app
    self.environment = environment
    self.version = version
    self.fileCount = fileCount
    self.totalSize = totalSize
    self.treeDigest = treeDigest
    self.files = files
  }

  /// App and environment names follow the naming rule, since `show` and the page print them.
  private func checkNames() throws {
    for (what, name) in [("app", app), ("environment", environment)] {
      guard let name else { continue }
      do {
        try Name.validate(name, as: what)
      } catch {
        throw ArchiveRefusal(
          entry: Manifest.entryName, rule: .manifestInvalid,
          detail: "\(what) name `\(displayName(Array(name.utf8)))` breaks the naming rule")
      }
    }
  }

  private func checkConsistency(limits: ArchiveLimits) throws {
    func invalid(_ detail: String) -> ArchiveRefusal {
      ArchiveRefusal(entry: Manifest.entryName, rule: .manifestInvalid, detail: detail)
    }
    guard files.count <= limits.maxFiles else {
      throw ArchiveRefusal(
        entry: Manifest.entryName, rule: .tooManyFiles,
        detail: "the manifest lists \(files.count) files, limit \(limits.maxFiles)", hint: .raiseLimit(.files))
    }
    guard fileCount == files.count else {
      throw invalid("fileCount is \(fileCount) but \(files.count) files are listed")
    }
    var total: Int64 = 0
    var previous: String?
    // Found for every file at once, and reported at the file as it comes, as the other checks are.
    let paths = files.map(\.path)
    let collisions = EntryPath.caseCollisions(inSorted: paths)
    for (index, file) in files.enumerated() {
      try EntryPath.validate(relativePath: file.path, shownAs: Manifest.configPrefix, limits: limits)
      guard EntryPath.isNFC(file.path) else {
        throw ArchiveRefusal(
          entry: displayName(Array((Manifest.configPrefix + file.path).utf8)), rule: .notNFC,
          detail: "tar readers compose names, so this one could never match its entry")
      }
      // The files are in path byte order (`decode` sorts them): a path listed twice is listed twice in a row.
      guard file.path != previous else {
        throw ArchiveRefusal(
          entry: Manifest.configPrefix + file.path, rule: .duplicatePath,
          detail: "listed twice in the manifest")
      }
      previous = file.path
      if let other = collisions[index] {
        throw ArchiveRefusal(
          entry: displayName(Array((Manifest.configPrefix + file.path).utf8)), rule: .caseCollision,
          detail: "and `\(displayName(Array((Manifest.configPrefix + files[other].path).utf8)))` in the manifest")
      }
      guard file.size >= 0 else { throw invalid("negative size for `\(file.path)`") }
      guard file.size <= limits.maxFileBytes else {
        throw ArchiveRefusal(
          entry: Manifest.configPrefix + file.path, rule: .fileTooLarge,
          detail: "the manifest says \(file.size) bytes, limit \(limits.maxFileBytes)", hint: .raiseLimit(.fileSize))
      }
      total += file.size
    }
    guard total <= limits.maxTotalBytes else {
      throw ArchiveRefusal(
        entry: Manifest.entryName, rule: .totalTooLarge,
        detail: "the manifest says \(total) bytes, limit \(limits.maxTotalBytes)", hint: .raiseLimit(.totalSize))
    }
    guard totalSize == total else {
      throw invalid("totalSize is \(totalSize) but the files add up to \(total)")
    }
    if let conflict = EntryPath.fileAndFolderConflict(in: paths) {
      throw ArchiveRefusal(
        entry: Manifest.configPrefix + conflict.file, rule: .fileAndFolder,
        detail: "`\(conflict.inside)` is inside it")
    }
    let computed = TreeDigest(sortedFiles: files)
    guard computed == treeDigest else {
      throw invalid("treeDigest is \(treeDigest) but the listed files give \(computed)")
    }
  }
}

extension Manifest: Codable {
  enum CodingKeys: String, CodingKey {
    case format, formatVersion, generator, app, environment, version, fileCount, totalSize
    case treeDigest, files
  }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    format = try container.decode(String.self, forKey: .format)
    formatVersion = try container.decode(Int.self, forKey: .formatVersion)
    generator = try container.decodeIfPresent(String.self, forKey: .generator) ?? ""
    app = try container.decodeIfPresent(String.self, forKey: .app)
    environment = try container.decodeIfPresent(String.self, forKey: .environment)
    version = try container.decodeIfPresent(VersionInfo.self, forKey: .version)
    fileCount = try container.decode(Int.self, forKey: .fileCount)
    totalSize = try container.decode(Int64.self, forKey: .totalSize)
    treeDigest = try container.decode(TreeDigest.self, forKey: .treeDigest)
    files = try container.decode([ManifestFile].self, forKey: .files)
  }

}
