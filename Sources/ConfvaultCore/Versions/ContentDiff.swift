import Foundation

/// A change at one key path of a JSON or YAML file: `fields.email.type: "text" -> "email"`.
///
/// As JSON: `path`, `kind` (`added`, `removed`, `changed`), `old` and `new` as the JSON values they
/// are (`old` absent for an added key, `new` for a removed one), and for strings of several lines
/// `text`, the unified diff of their lines.
public struct KeyChange: Sendable, Equatable, Codable {
  public enum Kind: String, Sendable, Codable {
    case added, removed, changed
  }

  public var path: String
  public var kind: Kind
  public var old: TreeValue?
  public var new: TreeValue?
  /// For a string of several lines: unified diff lines from the old text to the new.
  public var text: [String]?

  /// The longest value shown whole in `description`; longer ones are cut with a marker.
  public static let shownValueLength = 200

  public init(path: String, old: TreeValue?, new: TreeValue?) {
    self.path = path
    self.kind = old == nil ? .added : new == nil ? .removed : .changed
    self.old = old
    self.new = new
    if old?.isMultilineString == true || new?.isMultilineString == true {
      text = Self.lines(of: old, new)
    }
  }

  /// The unified diff of two string values (a missing one is empty), when it can be computed.
  private static func lines(of old: TreeValue?, _ new: TreeValue?) -> [String]? {
    func text(_ value: TreeValue?) -> String? {
      switch value {
      case nil: return ""
      case .string(let text)?: return text
      default: return nil
      }
    }
    guard let before = text(old), let after = text(new) else { return nil }
    return try? TextDiff.compare(TextLines(before), TextLines(after)).hunks
  }

  /// One line: values as compact JSON, long ones shortened; a text change only named (its lines
  /// are in `text`).
  public var description: String {
    let path = KeyPath.shown(self.path)
    func shown(_ value: TreeValue) -> String {
      if text != nil, case .string(let string) = value {
        let lines = string.split(separator: "\n", omittingEmptySubsequences: false).count
        return "text (\(lines) lines)"
      }
      return value.json(limit: Self.shownValueLength)
    }
    switch (old, new) {
    case (nil, let new?): return "\(path): added \(shown(new))"
    case (let old?, nil): return "\(path): removed \(shown(old))"
    case (let old?, let new?): return "\(path): \(shown(old)) -> \(shown(new))"
    case (nil, nil): return path
    }
  }

  enum CodingKeys: String, CodingKey { case path, kind, old, new, text }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    path = try container.decode(String.self, forKey: .path)
    kind = try container.decode(Kind.self, forKey: .kind)
    // A present `null` is the value null; an absent key is no value.
    old = container.contains(.old) ? try container.decode(TreeValue.self, forKey: .old) : nil
    new = container.contains(.new) ? try container.decode(TreeValue.self, forKey: .new) : nil
    text = try container.decodeIfPresent([String].self, forKey: .text)
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(path, forKey: .path)
    try container.encode(kind, forKey: .kind)
    try container.encodeIfPresent(old, forKey: .old)
    try container.encodeIfPresent(new, forKey: .new)
    try container.encodeIfPresent(text, forKey: .text)
  }
}

/// What changed in one file, in the most readable form its content allows (docs/diff.md).
///
/// As JSON: the change's `path`, `kind`, `old` and `new`, `notes`, and one of `keys` (key-path
/// changes), `text` (unified diff lines), `sizes` (`{"old": …, "new": …}`: binary, or added or removed
/// whole) or `tooLarge` (the same sizes: a change too large to show).
public struct FileDiff: Sendable, Codable {
  public enum Detail: Sendable {
    /// JSON or YAML: the changed key paths.
    case keys([KeyChange])
    /// Other text, or JSON and YAML whose values are equal but whose text is not: unified diff lines
    /// (`@@`, ` `, `-`, `+`).
    case text([String])
    /// Binary, or added or removed whole: sizes only.
    case sizes(old: Int64?, new: Int64?)
    /// Text too large to diff within the bounds a diff keeps to: sizes only.
    case tooLarge(old: Int64?, new: Int64?)
  }

  public var change: FileChange
  public var detail: Detail
  /// What the detail cannot say: duplicate keys, a file read as text because it does not parse,
  /// changed line endings or encoding.
  public var notes: [String]

  public init(change: FileChange, detail: Detail, notes: [String] = []) {
    self.change = change
    self.detail = detail
    self.notes = notes
  }

  /// Whether the file's executable bit changed along with its content.
  public var modeChanged: Bool {
    guard let old = change.old, let new = change.new else { return false }
    return old.mode != new.mode
  }

  enum CodingKeys: String, CodingKey { case keys, text, sizes, tooLarge, notes }

  private struct Sizes: Codable {
    @ExplicitNull var old: Int64?
    @ExplicitNull var new: Int64?
  }

  public init(from decoder: any Decoder) throws {
    change = try FileChange(from: decoder)
    let container = try decoder.container(keyedBy: CodingKeys.self)
    notes = try container.decodeIfPresent([String].self, forKey: .notes) ?? []
    if let keys = try container.decodeIfPresent([KeyChange].self, forKey: .keys) {
      detail = .keys(keys)
    } else if let lines = try container.decodeIfPresent([String].self, forKey: .text) {
      detail = .text(lines)
    } else if let sizes = try container.decodeIfPresent(Sizes.self, forKey: .tooLarge) {
      detail = .tooLarge(old: sizes.old, new: sizes.new)
    } else {
      let sizes = try container.decodeIfPresent(Sizes.self, forKey: .sizes)
      detail = .sizes(old: sizes?.old, new: sizes?.new)
    }
  }

  public func encode(to encoder: any Encoder) throws {
    try change.encode(to: encoder)
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(notes, forKey: .notes)
    switch detail {
    case .keys(let keys): try container.encode(keys, forKey: .keys)
    case .text(let lines): try container.encode(lines, forKey: .text)
    case .sizes(let old, let new): try container.encode(Sizes(old: old, new: new), forKey: .sizes)
    case .tooLarge(let old, let new): try container.encode(Sizes(old: old, new: new), forKey: .tooLarge)
    }
  }
}

/// Computes file diffs from stored content, by one rule (docs/diff.md): a `.json`, `.yaml` or `.yml`
/// file whose two versions both parse is compared key by key, and by its text when no value changed;
/// any other file is compared as text when both versions are text (UTF-8 or Latin-1, no NUL byte),
/// and by size otherwise.
public enum ContentDiff {
  /// Files larger than this are not read as JSON or YAML.
  public static let largestCompared: Int64 = 4 << 20
  /// Files larger than this are not diffed at all.
  public static let largestText: Int64 = 32 << 20

  /// What changed inside the file `change` names.
  ///
  /// - Parameter asText: compare as text even when the file could be compared key by key.
  public static func describe(_ change: FileChange, store: any VersionStore, asText: Bool = false) async throws
    -> FileDiff
  {
    guard change.kind == .modified, let old = change.old, let new = change.new else {
      return FileDiff(change: change, detail: .sizes(old: change.old?.size, new: change.new?.size))
    }
    guard old.size <= largestText, new.size <= largestText else {
      return FileDiff(change: change, detail: .tooLarge(old: old.size, new: new.size))
    }
    // Both in one read of the store where they fit; a large one is streamed.
    let read = try await store.readBlobs([old.sha256, new.sha256])
    let before: Data
    if let whole = read.first ?? nil { before = whole } else { before = try await content(old, store) }
    let after: Data
    if let whole = read.last ?? nil { after = whole } else { after = try await content(new, store) }
    // Parsing and comparing a large file takes a while: not on the threads all async work shares.
    // A small one is quicker to compare than to hand over.
    guard before.count + after.count > 256 << 10 else { return diff(change, before, after, asText: asText) }
    return try await offload { diff(change, before, after, asText: asText) }
  }

  /// The diff of `change`, whose content went from `before` to `after`.
  public static func diff(_ change: FileChange, _ before: Data, _ after: Data, asText: Bool = false) -> FileDiff {
    var notes: [String] = []
    let detail = compare(path: change.path, before, after, asText: asText, notes: &notes)
    return FileDiff(change: change, detail: detail, notes: notes)
  }

  /// The detail of a change from `before` to `after`, judged by the file's name and content.
  public static func compare(path: String, _ before: Data, _ after: Data) -> FileDiff.Detail {
    var notes: [String] = []
    return compare(path: path, before, after, asText: false, notes: &notes)
  }

  static func compare(path: String, _ before: Data, _ after: Data, asText: Bool, notes: inout [String])
    -> FileDiff.Detail
  {
    let sizes = (old: Int64(before.count), new: Int64(after.count))
    if !asText, let format = Format(path: path), sizes.old <= largestCompared, sizes.new <= largestCompared {
      switch (format.read(before), format.read(after)) {
      case (.success(let old), .success(let new)):
        notes += old.duplicateKeys.map { "old version: duplicate key \($0); the last one counts" }
        notes += new.duplicateKeys.map { "new version: duplicate key \($0); the last one counts" }
        let keys = TreeDiff.changes(old.root, new.root)
        if !keys.isEmpty { return .keys(keys) }
        notes.append("no value changed: only comments, formatting or order")
      case (let old, let new):
        let reasons = [("old", old), ("new", new)].compactMap { side, result -> String? in
          guard case .failure(let reason) = result else { return nil }
          switch reason {
          case .invalid: return "the \(side) version is not valid \(format.name)"
          case .tooLarge:
            return "the \(side) version nests too deep or expands too far (aliases) to read as \(format.name)"
          }
        }
        notes.append(reasons.joined(separator: "; ") + "; compared as text")
      }
    }
    guard let oldText = TextLines(before), let newText = TextLines(after) else {
      return .sizes(old: sizes.old, new: sizes.new)
    }
    guard sizes.old <= largestText, sizes.new <= largestText,
      let result = try? TextDiff.compare(oldText, newText)
    else {
      return .tooLarge(old: sizes.old, new: sizes.new)
    }
    notes += result.notes
    return .text(result.hunks)
  }

  /// The formats compared key by key, chosen by the file's name.
  enum Format {
    case json, yaml

    init?(path: String) {
      let lower = path.lowercased()
      if lower.hasSuffix(".json") {
        self = .json
      } else if lower.hasSuffix(".yaml") || lower.hasSuffix(".yml") {
        self = .yaml
      } else {
        return nil
      }
    }

    var name: String { self == .json ? "JSON" : "YAML" }

    func read(_ data: Data) -> Result<TreeDocument, TreeReader.Unreadable> {
      Result {
        switch self {
        case .json: return try TreeReader.json(data)
        case .yaml:
          // The YAML parser recurses once per level: a file nested deeper than any configuration is
          // compared as text instead of overflowing the stack.
          guard nestingDepth(data) <= TreeReader.maxDepth else { throw TreeReader.Unreadable.tooLarge }
          guard let text = String(validating: data, as: UTF8.self) else { throw TreeReader.Unreadable.invalid }
          return try TreeReader.yaml(text, budget: 4 * data.count + 1_000)
        }
      }.mapError { $0 as? TreeReader.Unreadable ?? .invalid }
    }
  }

  /// An upper bound of a YAML text's nesting: brackets open at once, or leading spaces over two
  /// (block YAML nests by indentation), whichever is larger.
  static func nestingDepth(_ data: Data) -> Int {
    data.withUnsafeBytes(nestingDepth)
  }

  private static func nestingDepth(_ bytes: UnsafeRawBufferPointer) -> Int {
    var depth = 0
    var deepest = 0
    var indent = 0
    var atLineStart = true
    for byte in bytes {
      switch byte {
      case UInt8(ascii: "["), UInt8(ascii: "{"):
        depth += 1
        deepest = max(deepest, depth)
      case UInt8(ascii: "]"), UInt8(ascii: "}"):
        depth -= 1
      case UInt8(ascii: "\n"):
        atLineStart = true
        indent = 0
        continue
      case UInt8(ascii: " ") where atLineStart:
        indent += 1
        deepest = max(deepest, indent / 2)
        continue
      default:
        break
      }
      atLineStart = false
    }
    return deepest
  }

  private static func content(_ file: ManifestFile, _ store: any VersionStore) async throws -> Data {
    var data = Data()
    try await store.readBlob(file.sha256) { data.append(contentsOf: $0) }
    return data
  }
}
