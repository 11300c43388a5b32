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
}

/// The `confvault.json` entry that opens every Confvault archive (format version 1, PRODUCT.md).
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
    self.files = files.sorted { EntryPath.byteOrder($0.path, $1.path) }
    self.fileCount = files.count
    self.totalSize = files.reduce(0) { $0 + $1.size }
    self.treeDigest = TreeDigest(files: files)
  }

  /// The manifest's bytes: UTF-8 JSON with sorted keys, the same for the same manifest every time.
  public func encoded() -> Data {
    // Encoding plain values with a fixed strategy cannot fail.
    // swift-format-ignore: NeverUseForceTry
    return try! JSONCoding.encoder().encode(self)
  }

  /// Reads and checks a manifest read from an archive.
  ///
  /// - Throws: `ArchiveRefusal` when it is not JSON, of another format, of a newer format version,
  ///   or inconsistent with itself (counts, sizes, tree digest, paths, limits).
  public static func decode(_ data: Data, limits: ArchiveLimits) throws -> Manifest {
    try checkEncoding(data)
    let decoder = JSONCoding.decoder()
    // One parse in the common case; the header alone is read again only to explain a failure.
    let decoded = Result { try decoder.decode(Manifest.self, from: data) }
    let header: Header
    switch decoded {
    case .success(let manifest):
      header = Header(format: manifest.format, formatVersion: manifest.formatVersion)
    case .failure:
      do {
        header = try decoder.decode(Header.self, from: data)
      } catch {
        throw ArchiveRefusal(
          entry: entryName, rule: .manifestInvalid, detail: "not a JSON object: \(describe(error))")
      }
    }
    guard header.format == formatName else {
      throw ArchiveRefusal(
        entry: entryName, rule: .manifestOtherFormat,
        detail: "format is \(header.format.map { "`\($0)`" } ?? "missing"), expected `\(formatName)`")
    }
    guard let formatVersion = header.formatVersion, formatVersion >= 1 else {
      throw ArchiveRefusal(
        entry: entryName, rule: .manifestInvalid, detail: "formatVersion missing or below 1")
    }
    guard formatVersion <= currentFormatVersion else {
      throw ArchiveRefusal(
        entry: entryName, rule: .manifestNewerVersion,
        detail:
          "formatVersion \(formatVersion), this confvault reads up to \(currentFormatVersion); upgrade confvault"
      )
    }
    let manifest: Manifest
    do {
      manifest = try decoded.get()
    } catch {
      throw ArchiveRefusal(entry: entryName, rule: .manifestInvalid, detail: describe(error))
    }
    try manifest.checkNames()
    try manifest.checkConsistency(limits: limits)
    return manifest
  }

  /// UTF-8 JSON without a byte order mark, NUL bytes (UTF-16 has them) or a key twice in one object
  /// (readers keep the first or the last: two readers, two manifests).
  private static func checkEncoding(_ data: Data) throws {
    func invalid(_ detail: String) -> ArchiveRefusal {
      ArchiveRefusal(entry: entryName, rule: .manifestInvalid, detail: detail)
    }
    if data.starts(with: [0xEF, 0xBB, 0xBF]) { throw invalid("it starts with a byte order mark") }
    if data.starts(with: [0xFF, 0xFE]) || data.starts(with: [0xFE, 0xFF]) || data.contains(0) {
      throw invalid("not UTF-8 (it looks like UTF-16)")
    }
    guard String(validating: data, as: UTF8.self) != nil else { throw invalid("not valid UTF-8") }
    if let key = JSONDuplicateKeys.first(in: data) {
      throw invalid("the key `\(displayName(Array(key.utf8)))` appears twice in one object")
    }
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
        detail: "the manifest lists \(files.count) files, limit \(limits.maxFiles)")
    }
    guard fileCount == files.count else {
      throw invalid("fileCount is \(fileCount) but \(files.count) files are listed")
    }
    var seen = Set<String>()
    var folded: [String: String] = [:]
    var total: Int64 = 0
    for file in files {
      try EntryPath.validate(relativePath: file.path, shownAs: Manifest.configPrefix, limits: limits)
      guard EntryPath.isNFC(file.path) else {
        throw ArchiveRefusal(
          entry: displayName(Array((Manifest.configPrefix + file.path).utf8)), rule: .notNFC,
          detail: "tar readers compose names, so this one could never match its entry")
      }
      guard seen.insert(file.path).inserted else {
        throw ArchiveRefusal(
          entry: Manifest.configPrefix + file.path, rule: .duplicatePath,
          detail: "listed twice in the manifest")
      }
      if let other = folded.updateValue(file.path, forKey: EntryPath.caseFolded(file.path)) {
        throw ArchiveRefusal(
          entry: displayName(Array((Manifest.configPrefix + file.path).utf8)), rule: .caseCollision,
          detail: "and `\(displayName(Array((Manifest.configPrefix + other).utf8)))` in the manifest")
      }
      guard file.size >= 0 else { throw invalid("negative size for `\(file.path)`") }
      guard file.size <= limits.maxFileBytes else {
        throw ArchiveRefusal(
          entry: Manifest.configPrefix + file.path, rule: .fileTooLarge,
          detail: "the manifest says \(file.size) bytes, limit \(limits.maxFileBytes)")
      }
      total += file.size
    }
    guard total <= limits.maxTotalBytes else {
      throw ArchiveRefusal(
        entry: Manifest.entryName, rule: .totalTooLarge,
        detail: "the manifest says \(total) bytes, limit \(limits.maxTotalBytes)")
    }
    guard totalSize == total else {
      throw invalid("totalSize is \(totalSize) but the files add up to \(total)")
    }
    if let conflict = EntryPath.fileAndFolderConflict(in: files.map(\.path)) {
      throw ArchiveRefusal(
        entry: Manifest.configPrefix + conflict.file, rule: .fileAndFolder,
        detail: "`\(conflict.inside)` is inside it")
    }
    let computed = TreeDigest(files: files)
    guard computed == treeDigest else {
      throw invalid("treeDigest is \(treeDigest) but the listed files give \(computed)")
    }
  }

  private struct Header: Decodable {
    var format: String?
    var formatVersion: Int?
  }

  private static func describe(_ error: any Error) -> String {
    switch error {
    case DecodingError.keyNotFound(let key, let context):
      return "`\(path(context.codingPath + [key]))` is missing"
    case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
      return "`\(path(context.codingPath))`: \(context.debugDescription)"
    case DecodingError.dataCorrupted(let context):
      return context.codingPath.isEmpty
        ? "not valid JSON" : "`\(path(context.codingPath))`: \(context.debugDescription)"
    default:
      return "\(error)"
    }
  }

  private static func path(_ keys: [any CodingKey]) -> String {
    keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
      .trimmingPrefix(".").description
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
