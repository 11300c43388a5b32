import Foundation
import Yams

/// A change at one key path of a JSON or YAML file: `fields.email.type: "text" -> "email"`.
public struct KeyChange: Sendable, Equatable, Codable {
  public var path: String
  /// The old value as compact JSON; nil when the key was added.
  public var old: String?
  /// The new value as compact JSON; nil when the key was removed.
  public var new: String?

  public var description: String {
    switch (old, new) {
    case (nil, let new?): return "\(path): added \(new)"
    case (let old?, nil): return "\(path): removed \(old)"
    default: return "\(path): \(old ?? "") -> \(new ?? "")"
    }
  }
}

/// What changed in one file, in the most readable form its content allows.
///
/// As JSON: the change's `path`, `kind`, `old` and `new`, and one of `keys` (key-path changes),
/// `text` (unified diff lines) or `sizes` (`{"old": …, "new": …}`).
public struct FileDiff: Sendable, Codable {
  public enum Detail: Sendable {
    /// JSON or YAML: the changed key paths.
    case keys([KeyChange])
    /// Other text: unified diff lines (`@@`, ` `, `-`, `+`).
    case text([String])
    /// Binary, too large, or added/removed whole: sizes only.
    case sizes(old: Int64?, new: Int64?)
  }

  public var change: FileChange
  public var detail: Detail

  public init(change: FileChange, detail: Detail) {
    self.change = change
    self.detail = detail
  }

  enum CodingKeys: String, CodingKey { case keys, text, sizes }

  private struct Sizes: Codable {
    @ExplicitNull var old: Int64?
    @ExplicitNull var new: Int64?
  }

  public init(from decoder: any Decoder) throws {
    change = try FileChange(from: decoder)
    let container = try decoder.container(keyedBy: CodingKeys.self)
    if let keys = try container.decodeIfPresent([KeyChange].self, forKey: .keys) {
      detail = .keys(keys)
    } else if let lines = try container.decodeIfPresent([String].self, forKey: .text) {
      detail = .text(lines)
    } else {
      let sizes = try container.decodeIfPresent(Sizes.self, forKey: .sizes)
      detail = .sizes(old: sizes?.old, new: sizes?.new)
    }
  }

  public func encode(to encoder: any Encoder) throws {
    try change.encode(to: encoder)
    var container = encoder.container(keyedBy: CodingKeys.self)
    switch detail {
    case .keys(let keys): try container.encode(keys, forKey: .keys)
    case .text(let lines): try container.encode(lines, forKey: .text)
    case .sizes(let old, let new): try container.encode(Sizes(old: old, new: new), forKey: .sizes)
    }
  }
}

/// Computes file diffs from stored content.
public enum ContentDiff {
  /// Files larger than this are compared by size only.
  public static let largestCompared: Int64 = 4 << 20

  public static func describe(_ change: FileChange, store: any VersionStore) async throws -> FileDiff {
    guard change.kind == .modified, let old = change.old, let new = change.new,
      old.size <= largestCompared, new.size <= largestCompared
    else {
      return FileDiff(change: change, detail: .sizes(old: change.old?.size, new: change.new?.size))
    }
    let before = try await content(old, store)
    let after = try await content(new, store)
    return FileDiff(change: change, detail: compare(path: change.path, before, after))
  }

  /// The detail of a change from `before` to `after`, judged by the file's name and content.
  public static func compare(path: String, _ before: Data, _ after: Data) -> FileDiff.Detail {
    let lower = path.lowercased()
    // Decoders and the key-path walk recurse once per level: a file nested deeper than any
    // configuration is compared as text instead of overflowing the stack.
    let shallow = nestingDepth(before) <= maxNesting && nestingDepth(after) <= maxNesting
    if shallow, lower.hasSuffix(".json"), let old = try? JSONDecoder().decode(TreeValue.self, from: before),
      let new = try? JSONDecoder().decode(TreeValue.self, from: after)
    {
      return .keys(keyChanges(old, new))
    }
    if shallow, lower.hasSuffix(".yaml") || lower.hasSuffix(".yml"),
      let oldText = String(data: before, encoding: .utf8), let newText = String(data: after, encoding: .utf8),
      !hasAlias(oldText), !hasAlias(newText),
      let old = try? YAMLDecoder().decode(TreeValue.self, from: oldText),
      let new = try? YAMLDecoder().decode(TreeValue.self, from: newText)
    {
      return .keys(keyChanges(old, new))
    }
    guard !before.contains(0), !after.contains(0), let oldText = String(data: before, encoding: .utf8),
      let newText = String(data: after, encoding: .utf8)
    else {
      return .sizes(old: Int64(before.count), new: Int64(after.count))
    }
    // The line diff takes time in proportion to lines × differences: beyond a bound, sizes only.
    let lines = oldText.utf8.count(where: { $0 == 0x0A }) + newText.utf8.count(where: { $0 == 0x0A })
    guard lines <= maxTextLines else { return .sizes(old: Int64(before.count), new: Int64(after.count)) }
    return .text(unifiedDiff(oldText, newText))
  }

  /// The deepest nesting a JSON or YAML file is compared at by keys.
  static let maxNesting = 200
  /// The most lines (both sides together) a text diff is computed for.
  static let maxTextLines = 10_000

  /// An upper bound of a JSON or YAML text's nesting: brackets open at once, or leading spaces over
  /// two (block YAML nests by indentation), whichever is larger.
  static func nestingDepth(_ data: Data) -> Int {
    var depth = 0
    var deepest = 0
    var indent = 0
    var atLineStart = true
    for byte in data {
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

  /// Whether YAML text uses an alias (`*name`). Expanding aliases can grow a few hundred bytes into
  /// billions of nodes, so such files are compared as text.
  static func hasAlias(_ text: String) -> Bool {
    text.range(of: #"(^|[\s\[\{,:-])\*[^\s,\]\}]"#, options: .regularExpression) != nil
  }

  private static func content(_ file: ManifestFile, _ store: any VersionStore) async throws -> Data {
    var data = Data()
    try await store.readBlob(file.sha256) { data.append(contentsOf: $0) }
    return data
  }

  // MARK: Key paths

  static func keyChanges(_ old: TreeValue, _ new: TreeValue, path: String = "") -> [KeyChange] {
    switch (old, new) {
    case (.object(let a), .object(let b)):
      var changes: [KeyChange] = []
      for key in Set(a.keys).union(b.keys).sorted() {
        let child = path.isEmpty ? key : path + "." + key
        switch (a[key], b[key]) {
        case (let x?, let y?): changes += keyChanges(x, y, path: child)
        case (let x?, nil): changes.append(KeyChange(path: child, old: x.json, new: nil))
        case (nil, let y?): changes.append(KeyChange(path: child, old: nil, new: y.json))
        default: break
        }
      }
      return changes
    case (.array(let a), .array(let b)) where a.count == b.count:
      return zip(a, b).enumerated().flatMap { index, pair in keyChanges(pair.0, pair.1, path: path + "[\(index)]") }
    default:
      return old == new ? [] : [KeyChange(path: path.isEmpty ? "(whole document)" : path, old: old.json, new: new.json)]
    }
  }

  // MARK: Unified text diff

  /// A unified diff of two texts with three lines of context.
  static func unifiedDiff(_ old: String, _ new: String, context: Int = 3) -> [String] {
    // A final newline ends the last line; it does not start an empty one.
    func lines(_ text: String) -> [String] {
      var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
      if text.hasSuffix("\n") { lines.removeLast() }
      return lines
    }
    let a = lines(old)
    let b = lines(new)
    let difference = b.difference(from: a)
    var removed = Set<Int>()
    var inserted = Set<Int>()
    for change in difference {
      switch change {
      case .remove(let offset, _, _): removed.insert(offset)
      case .insert(let offset, _, _): inserted.insert(offset)
      }
    }
    // Align both sides: (old index, new index, mark) for every line.
    var script: [(Int, Int, Character)] = []
    var i = 0
    var j = 0
    while i < a.count || j < b.count {
      if i < a.count && removed.contains(i) {
        script.append((i, j, "-"))
        i += 1
      } else if j < b.count && inserted.contains(j) {
        script.append((i, j, "+"))
        j += 1
      } else {
        script.append((i, j, " "))
        i += 1
        j += 1
      }
    }
    var lines: [String] = []
    var index = 0
    while index < script.count {
      guard script[index].2 != " " else {
        index += 1
        continue
      }
      let start = max(0, index - context)
      var end = index
      var lastChange = index
      while end < script.count && (script[end].2 != " " || end - lastChange <= context * 2) {
        if script[end].2 != " " { lastChange = end }
        end += 1
      }
      end = min(script.count, lastChange + context + 1)
      let hunk = script[start..<end]
      let oldCount = hunk.filter { $0.2 != "+" }.count
      let newCount = hunk.filter { $0.2 != "-" }.count
      lines.append("@@ -\(hunk.first!.0 + 1),\(oldCount) +\(hunk.first!.1 + 1),\(newCount) @@")
      for (oldIndex, newIndex, mark) in hunk {
        lines.append(String(mark) + (mark == "+" ? b[newIndex] : a[oldIndex]))
      }
      index = end
    }
    return lines
  }
}

/// A JSON or YAML document as a tree of values, for comparing key by key.
enum TreeValue: Equatable, Decodable {
  case null, bool(Bool), integer(Int64), number(Double), string(String)
  case array([TreeValue]), object([String: TreeValue])

  init(from decoder: any Decoder) throws {
    let container = try decoder.singleValueContainer()
    if container.decodeNil() {
      self = .null
    } else if let value = try? container.decode(Bool.self) {
      self = .bool(value)
    } else if let value = try? container.decode(Int64.self) {
      self = .integer(value)
    } else if let value = try? container.decode(Double.self) {
      self = .number(value)
    } else if let value = try? container.decode(String.self) {
      self = .string(value)
    } else if let value = try? container.decode([TreeValue].self) {
      self = .array(value)
    } else {
      self = .object(try container.decode([String: TreeValue].self))
    }
  }

  /// Compact JSON, as values are shown in diffs.
  var json: String {
    switch self {
    case .null: return "null"
    case .bool(let value): return value ? "true" : "false"
    case .integer(let value): return String(value)
    case .number(let value): return String(value)
    case .string(let value):
      let encoder = JSONEncoder()
      encoder.outputFormatting = .withoutEscapingSlashes
      let data = try? encoder.encode(value)
      return data.map { String(decoding: $0, as: UTF8.self) } ?? "\"\(value)\""
    case .array(let values): return "[" + values.map(\.json).joined(separator: ",") + "]"
    case .object(let values):
      return "{"
        + values.keys.sorted().map { "\(TreeValue.string($0).json):\(values[$0]!.json)" }.joined(separator: ",") + "}"
    }
  }
}
