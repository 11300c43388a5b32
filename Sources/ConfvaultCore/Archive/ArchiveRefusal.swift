/// Why an archive from outside was refused: the entry it concerns and the rule it broke.
///
/// Its description names both, for example
/// "entry `config/../x`: `..` component leaves the archive root; archive refused".
public struct ArchiveRefusal: ConfvaultError, Equatable {
  /// A rule of docs/archive-format.md's "What an archive from outside gets refused for".
  public enum Rule: String, Sendable, Equatable, CaseIterable {
    case absolutePath = "absolute path"
    case parentComponent = "`..` component leaves the archive root"
    case emptyComponent = "empty path component"
    case dotComponent = "`.` component inside the path"
    case controlCharacter = "control character (or NUL) in name"
    case bidiControl = "bidirectional control character in name"
    case backslash = "backslash in name"
    case caseCollision = "same path twice after case folding"
    case notUTF8 = "name is not valid UTF-8"
    case nameTooLong = "name too long"
    case duplicatePath = "same path twice"
    case fileAndFolder = "path is both a file and a folder"
    case notRegularFile = "not a regular file"
    case outsideConfig = "entry outside `config/`"
    case manifestMissing = "manifest `confvault.json` missing or not the first entry"
    case manifestRepeated = "manifest `confvault.json` appears twice"
    case manifestInvalid = "manifest is not valid"
    case manifestOtherFormat = "manifest is of another format"
    case manifestNewerVersion = "manifest format is newer than this confvault"
    case notInManifest = "file not listed in the manifest"
    case missingFile = "file listed in the manifest is missing"
    case sizeMismatch = "size differs from the manifest"
    case checksumMismatch = "SHA-256 differs from the manifest"
    case modeMismatch = "mode differs from the manifest"
    case fileTooLarge = "file larger than the limit"
    case totalTooLarge = "archive holds more bytes than the limit"
    case tooManyFiles = "archive holds more files than the limit"
    case corrupt = "archive is corrupt or truncated"
    case compressionChecksum = "compression checksum does not match"
    case nestedCompression = "more than one compression layer"
    case suspiciousHeader = "suspicious entry header"
    case sparse = "sparse entry"
    case globalHeader = "pax global header"
    case volumeHeader = "GNU volume or multivolume header"
    case notAnArchive = "not a tar archive"
    case trailingData = "data after the end of the archive"
    case noFiles = "archive holds no files"
    case otherApp = "archive of another app"
    case notNFC = "name is not in Unicode NFC form"
  }

  /// The entry's name as read, escaped for display; nil when the rule concerns the whole archive.
  public var entry: String?
  public var rule: Rule
  /// What exactly was found, in words.
  public var detail: String?
  public var hint: Hint?

  public init(entry: String?, rule: Rule, detail: String? = nil, hint: Hint? = nil) {
    self.entry = entry
    self.rule = rule
    self.detail = detail
    self.hint = hint
  }

  public var kind: FailureKind { .badInput }

  public var description: String {
    var text = entry.map { "entry `\($0)`: " } ?? "archive: "
    text += rule.rawValue
    if let detail { text += " (\(detail))" }
    return text + "; archive refused"
  }
}

/// A name read from an archive, shown safely: see `SafeText`.
func displayName(_ bytes: [UInt8]) -> String {
  SafeText.escaping(bytes: bytes)
}
