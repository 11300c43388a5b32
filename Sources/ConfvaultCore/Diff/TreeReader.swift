import Foundation
import Yams

/// A JSON or YAML file read as data, with what a reader should be told about it.
struct TreeDocument {
  /// The document, or for a YAML file of several documents, an array of them.
  var root: TreeValue
  /// Keys that occur twice in one object: the last one counts, as in Python and JavaScript.
  var duplicateKeys: [String] = []
}

/// Reads JSON and YAML the way their common readers do, bounded in depth and size.
enum TreeReader {
  /// The deepest nesting read; deeper files are compared as text.
  static let maxDepth = 200

  /// Why a file was not read as data.
  enum Unreadable: Error {
    /// It is not valid JSON or YAML.
    case invalid
    /// It nests deeper than `maxDepth`, or its aliases expand past the budget.
    case tooLarge
  }

  // MARK: JSON (RFC 8259)

  /// A JSON text, strictly: one value, no comments or trailing commas; a leading BOM is skipped.
  static func json(_ data: Data) throws -> TreeDocument {
    var parser = JSONParser(bytes: [UInt8](data))
    return try parser.document()
  }

  private struct JSONParser {
    let bytes: [UInt8]
    var index = 0
    var duplicates: [String] = []

    init(bytes: [UInt8]) {
      self.bytes = bytes
      if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
    }

    mutating func document() throws -> TreeDocument {
      let root = try value(path: "", depth: 0)
      skipSpace()
      guard index == bytes.count else { throw Unreadable.invalid }
      return TreeDocument(root: root, duplicateKeys: duplicates)
    }

    mutating func skipSpace() {
      while index < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[index]) { index += 1 }
    }

    mutating func value(path: String, depth: Int) throws -> TreeValue {
      guard depth < TreeReader.maxDepth else { throw Unreadable.tooLarge }
      skipSpace()
      guard index < bytes.count else { throw Unreadable.invalid }
      switch bytes[index] {
      case UInt8(ascii: "{"):
        index += 1
        var object: [String: TreeValue] = [:]
        skipSpace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
          index += 1
          return .object(object)
        }
        while true {
          skipSpace()
          let key = try string()
          skipSpace()
          try expect(":")
          let child = KeyPath.appending(key: key, to: path)
          if object[key] != nil { duplicates.append(child) }
          object[key] = try value(path: child, depth: depth + 1)
          skipSpace()
          if try separator(closing: "}") { return .object(object) }
        }
      case UInt8(ascii: "["):
        index += 1
        var array: [TreeValue] = []
        skipSpace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
          index += 1
          return .array(array)
        }
        while true {
          array.append(try value(path: KeyPath.appending(index: array.count, to: path), depth: depth + 1))
          skipSpace()
          if try separator(closing: "]") { return .array(array) }
        }
      case UInt8(ascii: "\""): return .string(try string())
      case UInt8(ascii: "t"): return try literal("true", .bool(true))
      case UInt8(ascii: "f"): return try literal("false", .bool(false))
      case UInt8(ascii: "n"): return try literal("null", .null)
      default: return try number()
      }
    }

    /// Consumes `,` (false: more to come) or `closing` (true: done).
    mutating func separator(closing: Character) throws -> Bool {
      guard index < bytes.count else { throw Unreadable.invalid }
      if bytes[index] == UInt8(ascii: ",") {
        index += 1
        return false
      }
      try expect(closing)
      return true
    }

    mutating func expect(_ character: Character) throws {
      guard index < bytes.count, bytes[index] == character.asciiValue! else { throw Unreadable.invalid }
      index += 1
    }

    mutating func literal(_ word: String, _ value: TreeValue) throws -> TreeValue {
      let utf8 = Array(word.utf8)
      guard bytes[index...].starts(with: utf8) else { throw Unreadable.invalid }
      index += utf8.count
      return value
    }

    mutating func number() throws -> TreeValue {
      let start = index
      var integral = true
      if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
      func digits() -> Int {
        let from = index
        while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
        return index - from
      }
      let whole = index
      guard digits() > 0, bytes[whole] != UInt8(ascii: "0") || index - whole == 1 else { throw Unreadable.invalid }
      if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
        index += 1
        integral = false
        guard digits() > 0 else { throw Unreadable.invalid }
      }
      if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
        index += 1
        integral = false
        if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard digits() > 0 else { throw Unreadable.invalid }
      }
      let text = String(decoding: bytes[start..<index], as: UTF8.self)
      if integral, let value = Int64(text) { return .integer(value) }
      guard let value = Double(text) else { throw Unreadable.invalid }
      return .number(value)
    }

    mutating func string() throws -> String {
      try expect("\"")
      var scalars = String.UnicodeScalarView()
      var run = index
      func flush() throws {
        guard let text = String(validating: bytes[run..<index], as: UTF8.self) else { throw Unreadable.invalid }
        scalars.append(contentsOf: text.unicodeScalars)
      }
      while true {
        guard index < bytes.count else { throw Unreadable.invalid }
        let byte = bytes[index]
        if byte == UInt8(ascii: "\"") {
          defer { index += 1 }
          // Most strings have no escape: their bytes are the string.
          if scalars.isEmpty, let text = String(validating: bytes[run..<index], as: UTF8.self) { return text }
          try flush()
          return String(scalars)
        }
        guard byte >= 0x20 else { throw Unreadable.invalid }
        guard byte == UInt8(ascii: "\\") else {
          index += 1
          continue
        }
        try flush()
        index += 1
        guard index < bytes.count else { throw Unreadable.invalid }
        let escape = bytes[index]
        index += 1
        switch escape {
        case UInt8(ascii: "\""): scalars.append("\"")
        case UInt8(ascii: "\\"): scalars.append("\\")
        case UInt8(ascii: "/"): scalars.append("/")
        case UInt8(ascii: "b"): scalars.append("\u{08}")
        case UInt8(ascii: "f"): scalars.append("\u{0C}")
        case UInt8(ascii: "n"): scalars.append("\n")
        case UInt8(ascii: "r"): scalars.append("\r")
        case UInt8(ascii: "t"): scalars.append("\t")
        case UInt8(ascii: "u"):
          var code = try hex4()
          if (0xD800..<0xDC00).contains(code), bytes[index...].starts(with: Array("\\u".utf8)) {
            index += 2
            let low = try hex4()
            if (0xDC00..<0xE000).contains(low) {
              code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
            } else {
              scalars.append("\u{FFFD}")
              code = low
            }
          }
          scalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
        default: throw Unreadable.invalid
        }
        run = index
      }
    }

    mutating func hex4() throws -> UInt32 {
      guard index + 4 <= bytes.count,
        let code = UInt32(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16)
      else { throw Unreadable.invalid }
      index += 4
      return code
    }
  }

  // MARK: YAML (1.2 core schema)

  /// The YAML 1.2 core schema's implicit types; anything else written plainly is a string
  /// (`grafana/grafana:6.0.1`, `2024-01-01`, `yes`, `0:30`), as Kubernetes and YAML 1.2 readers see it.
  /// `<<` stays the merge key most YAML in use relies on.
  nonisolated(unsafe) static let coreSchema: Resolver = {
    // The patterns are constants: they compile.
    // swiftlint:disable force_try
    try! Resolver.basic
      .appending(.null, "^(?:~|null|Null|NULL|)$")
      .appending(.bool, "^(?:true|True|TRUE|false|False|FALSE)$")
      .appending(.int, "^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
      .appending(
        .float,
        "^(?:[-+]?(?:\\.[0-9]+|[0-9]+(?:\\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\\.(?:inf|Inf|INF)|\\.(?:nan|NaN|NAN))$"
      )
      .appending(.merge, "^<<$")
  }()

  /// A YAML text: one document is that document; several are an array of them.
  ///
  /// - Parameter budget: the most nodes read, aliases counted each time they are used, so an
  ///   "alias bomb" (a few lines that expand to billions of nodes) stops early.
  static func yaml(_ text: String, budget: Int) throws -> TreeDocument {
    var nodes: [Node] = []
    do {
      let parser = try Parser(yaml: text, resolver: coreSchema)
      while let node = try parser.nextRoot() { nodes.append(node) }
    } catch {
      throw Unreadable.invalid
    }
    var reader = YAMLReader(budget: budget)
    guard nodes.count > 1 else {
      let root = try nodes.first.map { try reader.value($0, path: "", depth: 0) } ?? .null
      return TreeDocument(root: root, duplicateKeys: reader.duplicates)
    }
    var documents: [TreeValue] = []
    for node in nodes {
      documents.append(try reader.value(node, path: KeyPath.appending(index: documents.count, to: ""), depth: 1))
    }
    return TreeDocument(root: .array(documents), duplicateKeys: reader.duplicates)
  }

  private struct YAMLReader {
    var budget: Int
    var duplicates: [String] = []

    mutating func value(_ node: Node, path: String, depth: Int) throws -> TreeValue {
      budget -= 1
      guard budget >= 0, depth < TreeReader.maxDepth else { throw Unreadable.tooLarge }
      switch node {
      case .scalar(let scalar): return Self.scalar(scalar, tag: Self.tagName(of: scalar))
      case .sequence(let sequence):
        var array: [TreeValue] = []
        for element in sequence {
          array.append(try value(element, path: KeyPath.appending(index: array.count, to: path), depth: depth + 1))
        }
        return .array(array)
      case .mapping(let mapping):
        var object: [String: TreeValue] = [:]
        var merged: [String: TreeValue] = [:]
        for (key, child) in mapping {
          if case .scalar(let scalar) = key, Self.tagName(of: scalar) == Tag.Name.merge.rawValue {
            // `<<: *base` or `<<: [*a, *b]`: keys of the mappings named, the first one's first,
            // never over a key the mapping itself sets.
            let sources: [Node] = child.sequence.map { Array($0) } ?? [child]
            for source in sources {
              guard case .object(let values) = try value(source, path: path, depth: depth + 1) else {
                throw Unreadable.invalid
              }
              for (name, value) in values where merged[name] == nil { merged[name] = value }
            }
            continue
          }
          let name = try self.key(key, depth: depth)
          let childPath = KeyPath.appending(key: name, to: path)
          if object[name] != nil { duplicates.append(childPath) }
          object[name] = try value(child, path: childPath, depth: depth + 1)
        }
        for (name, value) in merged where object[name] == nil { object[name] = value }
        return .object(object)
      }
    }

    /// A mapping key as a string: a scalar's text, anything else its compact JSON.
    mutating func key(_ node: Node, depth: Int) throws -> String {
      if case .scalar(let scalar) = node { return scalar.string }
      return try value(node, path: "", depth: depth + 1).json
    }

    /// A scalar's tag: the one written, else the core schema's reading of a plain scalar.
    ///
    /// The same answer as resolving with `TreeReader.coreSchema`, without its regular expressions,
    /// which took a third of a large diff's time.
    static func tagName(of scalar: Node.Scalar) -> String {
      let written = scalar.tag.description
      if written == Tag.Name.nonSpecific.rawValue { return Tag.Name.str.rawValue }
      guard written == Tag.Name.implicit.rawValue else { return written }
      return CoreSchema.tag(ofPlain: scalar.string).rawValue
    }

    static func scalar(_ scalar: Node.Scalar, tag: String) -> TreeValue {
      let text = scalar.string
      switch tag {
      case Tag.Name.null.rawValue: return .null
      case Tag.Name.bool.rawValue: return .bool(text.lowercased() == "true")
      case Tag.Name.int.rawValue:
        if let value = integer(text) { return .integer(value) }
        return Double(text).map(TreeValue.number) ?? .string(text)
      case Tag.Name.float.rawValue:
        // JSON has no infinity or NaN: those stay as written.
        guard let value = Double(text), value.isFinite else { return .string(text) }
        return .number(value)
      default: return .string(text)
      }
    }

    static func integer(_ text: String) -> Int64? {
      if text.hasPrefix("0o") { return Int64(text.dropFirst(2), radix: 8) }
      if text.hasPrefix("0x") { return Int64(text.dropFirst(2), radix: 16) }
      return Int64(text.hasPrefix("+") ? String(text.dropFirst()) : text)
    }
  }
}

/// The YAML 1.2 core schema's implicit types of a plain scalar, as `TreeReader.coreSchema`'s patterns
/// say, read byte by byte.
enum CoreSchema {
  static func tag(ofPlain text: String) -> Tag.Name {
    let bytes = Array(text.utf8)
    switch text {
    case "", "~", "null", "Null", "NULL": return .null
    case "true", "True", "TRUE", "false", "False", "FALSE": return .bool
    case "<<": return .merge
    case ".nan", ".NaN", ".NAN": return .float
    default: break
    }
    if isInteger(bytes) { return .int }
    if isFloat(bytes) { return .float }
    return .str
  }

  private static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

  /// `[-+]?[0-9]+`, `0o[0-7]+` or `0x[0-9a-fA-F]+`.
  static func isInteger(_ bytes: [UInt8]) -> Bool {
    if bytes.count > 2, bytes[0] == 0x30, bytes[1] == UInt8(ascii: "o") {
      return bytes.dropFirst(2).allSatisfy { $0 >= 0x30 && $0 <= 0x37 }
    }
    if bytes.count > 2, bytes[0] == 0x30, bytes[1] == UInt8(ascii: "x") {
      return bytes.dropFirst(2).allSatisfy { isDigit($0) || (0x61...0x66).contains($0) || (0x41...0x46).contains($0) }
    }
    let digits = bytes.first == UInt8(ascii: "-") || bytes.first == UInt8(ascii: "+") ? bytes.dropFirst() : bytes[...]
    return !digits.isEmpty && digits.allSatisfy(isDigit)
  }

  /// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?` or `[-+]?\.(inf|Inf|INF)`.
  static func isFloat(_ bytes: [UInt8]) -> Bool {
    var index = 0
    if index < bytes.count, bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") { index += 1 }
    let rest = bytes[index...]
    if [".inf", ".Inf", ".INF"].contains(where: { rest.elementsEqual($0.utf8) }) { return true }
    let integerStart = index
    while index < bytes.count, isDigit(bytes[index]) { index += 1 }
    let integerDigits = index - integerStart
    var fractionDigits = 0
    if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
      index += 1
      let fractionStart = index
      while index < bytes.count, isDigit(bytes[index]) { index += 1 }
      fractionDigits = index - fractionStart
    }
    // `.5` needs a digit after the point; `5.` and `5` are fine.
    guard integerDigits > 0 || fractionDigits > 0 else { return false }
    if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
      index += 1
      if index < bytes.count, bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") { index += 1 }
      let exponentStart = index
      while index < bytes.count, isDigit(bytes[index]) { index += 1 }
      guard index > exponentStart else { return false }
    }
    return index == bytes.count
  }
}
