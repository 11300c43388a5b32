import Foundation

/// Reads `confvault.json` in one pass over its bytes straight into a manifest's fields: no document
/// tree is built, and each file's entry is made as its object ends.
///
/// It reads JSON as RFC 8259 has it, and refuses a key given twice in one object (at any depth, escapes
/// resolved: readers keep the first or the last, so two readers would see two manifests). The bytes
/// are valid UTF-8 already (`Manifest.decode` checks them first). A field missing or of the wrong
/// type does not stop the reading: it is kept in `fieldError`, as a newer format may shape its fields
/// differently and the format and its version are judged first.
struct ManifestDecoder {
  /// The JSON is not well formed, or not an object.
  struct SyntaxError: Error {
    var problem: String
  }

  /// One object holds `key` twice.
  struct DuplicateKey: Error {
    var key: String
  }

  /// What the document's top-level fields held; nil for a field missing or of the wrong type.
  struct Fields {
    var format: String?
    var formatIsString = true
    var formatVersion: Int?
    var generator = ""
    var app: String?
    var environment: String?
    var version: Manifest.VersionInfo?
    var fileCount: Int?
    var totalSize: Int64?
    var treeDigest: TreeDigest?
    var files: [ManifestFile]?
    /// The first field missing or of the wrong type, as `` `path`: problem ``.
    var fieldError: String?
  }

  /// Nesting deeper than this is refused, so that a hostile document cannot exhaust the stack.
  static let maxDepth = 64

  private let bytes: UnsafeRawBufferPointer
  private var index = 0
  private var fields = Fields()

  private init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

  /// The manifest fields of `bytes`.
  ///
  /// - Throws: `SyntaxError` for a document that is not one JSON object, `DuplicateKey` for a key
  ///   twice in one object.
  static func fields(of bytes: UnsafeRawBufferPointer) throws -> Fields {
    var decoder = ManifestDecoder(bytes)
    try decoder.readDocument()
    return decoder.fields
  }

  // MARK: The manifest's shape

  private mutating func readDocument() throws {
    skipWhitespace()
    guard peek() == UInt8(ascii: "{") else {
      throw SyntaxError(problem: index < bytes.count ? "the document is not an object" : "the document is empty")
    }
    var missing: Set<String> = ["format", "formatVersion", "fileCount", "totalSize", "treeDigest", "files"]
    try readObject(depth: 1) { decoder, key in
      missing.remove(key)
      switch key {
      case "format":
        if case .string(let text) = try decoder.readScalar(depth: 1) {
          decoder.fields.format = text
        } else {
          decoder.fields.formatIsString = false
        }
      case "formatVersion":
        if case .integer(let number) = try decoder.readScalar(depth: 1), let number = Int(exactly: number) {
          decoder.fields.formatVersion = number
        }
      case "generator":
        decoder.fields.generator = try decoder.readOptionalString(at: "generator") ?? ""
      case "app":
        decoder.fields.app = try decoder.readOptionalString(at: "app")
      case "environment":
        decoder.fields.environment = try decoder.readOptionalString(at: "environment")
      case "version":
        decoder.fields.version = try decoder.readVersion()
      case "fileCount":
        decoder.fields.fileCount = try decoder.readInteger(at: "fileCount").flatMap { Int(exactly: $0) }
      case "totalSize":
        decoder.fields.totalSize = try decoder.readInteger(at: "totalSize")
      case "treeDigest":
        let text = try decoder.readString(at: "treeDigest")
        decoder.fields.treeDigest = text.flatMap(TreeDigest.init)
        if text != nil && decoder.fields.treeDigest == nil {
          decoder.noteFieldError("`treeDigest`: not `sha256:` and 64 hex digits")
        }
      case "files":
        decoder.fields.files = try decoder.readFiles()
      default:
        try decoder.skipValue(depth: 1)
      }
    }
    skipWhitespace()
    guard index == bytes.count else { throw SyntaxError(problem: "text after the document's object") }
    for key in missing.sorted() { noteFieldError("`\(key)` is missing") }
  }

  private mutating func readVersion() throws -> Manifest.VersionInfo? {
    skipWhitespace()
    if peek() == UInt8(ascii: "n") {
      _ = try readScalar(depth: 1)
      return nil
    }
    guard peek() == UInt8(ascii: "{") else {
      try skipValue(depth: 1)
      noteFieldError("`version`: expected an object or null")
      return nil
    }
    var number: Int?
    var author: String?
    var createdAt: Date?
    var comment = ""
    var origin: String?
    var syncedAt: Date?
    var seen: Set<String> = []
    try readObject(depth: 2) { decoder, key in
      seen.insert(key)
      switch key {
      case "number": number = try decoder.readInteger(at: "version.number").flatMap { Int(exactly: $0) }
      case "author": author = try decoder.readString(at: "version.author")
      case "createdAt": createdAt = try decoder.readDate(at: "version.createdAt", optional: false)
      case "comment": comment = try decoder.readOptionalString(at: "version.comment") ?? ""
      case "origin": origin = try decoder.readString(at: "version.origin")
      case "syncedAt": syncedAt = try decoder.readDate(at: "version.syncedAt", optional: true)
      default: try decoder.skipValue(depth: 2)
      }
    }
    for key in ["author", "createdAt", "number", "origin"] where !seen.contains(key) {
      noteFieldError("`version.\(key)` is missing")
    }
    guard let number, let author, let createdAt, let origin else { return nil }
    return Manifest.VersionInfo(
      number: number, author: author, createdAt: createdAt, comment: comment, origin: origin, syncedAt: syncedAt)
  }

  private mutating func readFiles() throws -> [ManifestFile]? {
    skipWhitespace()
    guard peek() == UInt8(ascii: "[") else {
      try skipValue(depth: 1)
      noteFieldError("`files`: expected an array")
      return nil
    }
    index += 1
    var files: [ManifestFile] = []
    if let count = fields.fileCount, count > 0 {
      // Each entry takes well over 64 bytes of JSON, so a false count cannot reserve much.
      files.reserveCapacity(min(count, bytes.count / 64))
    }
    var complete = true
    skipWhitespace()
    if peek() == UInt8(ascii: "]") {
      index += 1
      return files
    }
    while true {
      if let file = try readFile(at: files.count) { files.append(file) } else { complete = false }
      skipWhitespace()
      switch next() {
      case UInt8(ascii: ","): continue
      case UInt8(ascii: "]"): return complete ? files : nil
      default: throw SyntaxError(problem: "expected `,` or `]` in the `files` array")
      }
    }
  }

  /// The known keys of a file's entry, as bits, for the key-twice check without a set per entry.
  private static let fileKeys: [String: UInt8] = ["path": 1, "size": 2, "mode": 4, "sha256": 8]

  private mutating func readFile(at position: Int) throws -> ManifestFile? {
    skipWhitespace()
    let at = "files[\(position)]"
    guard peek() == UInt8(ascii: "{") else {
      try skipValue(depth: 2)
      noteFieldError("`\(at)`: expected an object")
      return nil
    }
    var path: String?
    var size: Int64?
    var mode: FileMode?
    var sha256: SHA256Hex?
    var seen: UInt8 = 0
    try readObject(depth: 3, knownKeys: Self.fileKeys) { decoder, key in
      switch key {
      case "path":
        path = try decoder.readString(at: "\(at).path")
      case "size":
        size = try decoder.readInteger(at: "\(at).size")
      case "mode":
        if let text = try decoder.readString(at: "\(at).mode") {
          mode = FileMode(rawValue: text)
          if mode == nil { decoder.noteFieldError("`\(at).mode`: `\(text)` is not 0644 or 0755") }
        }
      case "sha256":
        if let text = try decoder.readString(at: "\(at).sha256") {
          sha256 = SHA256Hex(text)
          if sha256 == nil { decoder.noteFieldError("`\(at).sha256`: not 64 lowercase hex digits") }
        }
      default:
        try decoder.skipValue(depth: 3)
      }
      seen |= Self.fileKeys[key] ?? 0
    }
    for (key, bit) in Self.fileKeys.sorted(by: { $0.value < $1.value }) where seen & bit == 0 {
      noteFieldError("`\(at).\(key)` is missing")
    }
    guard let path, let size, let mode, let sha256 else { return nil }
    return ManifestFile(path: path, size: size, mode: mode, sha256: sha256)
  }

  // MARK: Typed values: a wrong type is noted, and the value passed over

  private mutating func noteFieldError(_ problem: String) {
    if fields.fieldError == nil { fields.fieldError = problem }
  }

  private mutating func readString(at path: String) throws -> String? {
    guard case .string(let text) = try readScalar(depth: 2) else {
      noteFieldError("`\(path)`: expected a string")
      return nil
    }
    return text
  }

  /// A string, or nil for `null`.
  private mutating func readOptionalString(at path: String) throws -> String? {
    switch try readScalar(depth: 2) {
    case .string(let text): return text
    case .null: return nil
    default:
      noteFieldError("`\(path)`: expected a string or null")
      return nil
    }
  }

  private mutating func readInteger(at path: String) throws -> Int64? {
    guard case .integer(let number) = try readScalar(depth: 2) else {
      noteFieldError("`\(path)`: expected an integer")
      return nil
    }
    return number
  }

  private mutating func readDate(at path: String, optional: Bool) throws -> Date? {
    switch try readScalar(depth: 2) {
    case .string(let text):
      guard let date = Timestamp.parse(text) else {
        noteFieldError("`\(path)`: `\(text)` is not an ISO 8601 UTC time")
        return nil
      }
      return date
    case .null where optional:
      return nil
    default:
      noteFieldError("`\(path)`: expected a time")
      return nil
    }
  }

  private enum Scalar {
    case string(String)
    case integer(Int64)
    case null
    /// Any other value (a fraction, an integer out of range, a boolean, an object, an array), passed over.
    case other
  }

  /// The next value, when it is a string, an integer or null; any other is read past.
  private mutating func readScalar(depth: Int) throws -> Scalar {
    skipWhitespace()
    switch peek() ?? 0 {
    case UInt8(ascii: "\""):
      return .string(try readStringValue())
    case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
      return try readNumber().map(Scalar.integer) ?? .other
    case UInt8(ascii: "n"):
      try expectWord("null")
      return .null
    default:
      try skipValue(depth: depth)
      return .other
    }
  }

  // MARK: JSON syntax

  /// Reads an object, calling `body` with each key once the decoder stands before its value, which
  /// `body` must read.
  ///
  /// - Parameter knownKeys: the keys that can be told apart by a bit; other keys go into a set, made
  ///   only when one is met.
  private mutating func readObject(
    depth: Int, knownKeys: [String: UInt8] = [:], _ body: (inout ManifestDecoder, String) throws -> Void
  ) throws {
    guard depth <= Self.maxDepth else { throw SyntaxError(problem: "nested more than \(Self.maxDepth) deep") }
    index += 1  // `{`
    var seenBits: UInt8 = 0
    var seenKeys: Set<String> = []
    skipWhitespace()
    if peek() == UInt8(ascii: "}") {
      index += 1
      return
    }
    while true {
      skipWhitespace()
      guard peek() == UInt8(ascii: "\"") else { throw SyntaxError(problem: "expected a key in quotes") }
      let key = try readStringValue()
      if let bit = knownKeys[key] {
        guard seenBits & bit == 0 else { throw DuplicateKey(key: key) }
        seenBits |= bit
      } else {
        guard seenKeys.insert(key).inserted else { throw DuplicateKey(key: key) }
      }
      skipWhitespace()
      guard next() == UInt8(ascii: ":") else { throw SyntaxError(problem: "expected `:` after a key") }
      try body(&self, key)
      skipWhitespace()
      switch next() {
      case UInt8(ascii: ","): continue
      case UInt8(ascii: "}"): return
      default: throw SyntaxError(problem: "expected `,` or `}` in an object")
      }
    }
  }

  /// Reads past any value, checking its syntax and its objects' keys.
  private mutating func skipValue(depth: Int) throws {
    skipWhitespace()
    switch peek() ?? 0 {
    case UInt8(ascii: "{"):
      try readObject(depth: depth + 1) { decoder, _ in try decoder.skipValue(depth: depth + 1) }
    case UInt8(ascii: "["):
      guard depth + 1 <= Self.maxDepth else { throw SyntaxError(problem: "nested more than \(Self.maxDepth) deep") }
      index += 1
      skipWhitespace()
      if peek() == UInt8(ascii: "]") {
        index += 1
        return
      }
      while true {
        try skipValue(depth: depth + 1)
        skipWhitespace()
        switch next() {
        case UInt8(ascii: ","): continue
        case UInt8(ascii: "]"): return
        default: throw SyntaxError(problem: "expected `,` or `]` in an array")
        }
      }
    case UInt8(ascii: "\""):
      _ = try readStringValue()
    case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
      _ = try readNumber()
    case UInt8(ascii: "t"): try expectWord("true")
    case UInt8(ascii: "f"): try expectWord("false")
    case UInt8(ascii: "n"): try expectWord("null")
    default:
      throw SyntaxError(problem: index < bytes.count ? "unexpected character" : "the document ends early")
    }
  }

  /// Reads a number; gives it when it is an integer that fits 64 bits.
  private mutating func readNumber() throws -> Int64? {
    let negative = peek() == UInt8(ascii: "-")
    if negative { index += 1 }
    var value: Int64? = 0
    guard let first = peek(), isDigit(first) else { throw SyntaxError(problem: "a number without digits") }
    if first == UInt8(ascii: "0") {
      index += 1
    } else {
      while let digit = peek(), isDigit(digit) {
        let amount = Int64(digit - UInt8(ascii: "0"))
        if let current = value {
          let (times, overflowA) = current.multipliedReportingOverflow(by: 10)
          let (sum, overflowB) = times.addingReportingOverflow(negative ? -amount : amount)
          value = overflowA || overflowB ? nil : sum
        }
        index += 1
      }
    }
    var integral = true
    if peek() == UInt8(ascii: ".") {
      integral = false
      index += 1
      try skipDigits()
    }
    if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
      integral = false
      index += 1
      if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { index += 1 }
      try skipDigits()
    }
    return integral ? value : nil
  }

  private mutating func skipDigits() throws {
    guard let digit = peek(), isDigit(digit) else { throw SyntaxError(problem: "a number without digits") }
    while let digit = peek(), isDigit(digit) { index += 1 }
  }

  private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

  /// Reads a string (the decoder stands on its opening quote), its escapes resolved.
  private mutating func readStringValue() throws -> String {
    index += 1
    let start = index
    // The common case: no escape, so the bytes are the string (they are valid UTF-8).
    while index < bytes.count {
      let byte = bytes[index]
      if byte == UInt8(ascii: "\"") {
        defer { index += 1 }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
      }
      if byte == UInt8(ascii: "\\") { break }
      guard byte >= 0x20 else { throw SyntaxError(problem: "a control character inside a string") }
      index += 1
    }
    var decoded = Array(bytes[start..<index])
    while true {
      guard index < bytes.count else { throw SyntaxError(problem: "a string without its closing quote") }
      let byte = bytes[index]
      index += 1
      switch byte {
      case UInt8(ascii: "\""):
        return String(decoding: decoded, as: UTF8.self)
      case UInt8(ascii: "\\"):
        try readEscape(into: &decoded)
      case 0..<0x20:
        throw SyntaxError(problem: "a control character inside a string")
      default:
        decoded.append(byte)
      }
    }
  }

  private mutating func readEscape(into decoded: inout [UInt8]) throws {
    guard let escaped = next() else { throw SyntaxError(problem: "a string without its closing quote") }
    switch escaped {
    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded.append(escaped)
    case UInt8(ascii: "b"): decoded.append(0x08)
    case UInt8(ascii: "f"): decoded.append(0x0C)
    case UInt8(ascii: "n"): decoded.append(0x0A)
    case UInt8(ascii: "r"): decoded.append(0x0D)
    case UInt8(ascii: "t"): decoded.append(0x09)
    case UInt8(ascii: "u"):
      var scalar = UInt32(try readHex4())
      if (0xD800..<0xDC00).contains(scalar) {
        guard next() == UInt8(ascii: "\\"), next() == UInt8(ascii: "u") else {
          throw SyntaxError(problem: "an unpaired surrogate escape")
        }
        let low = UInt32(try readHex4())
        guard (0xDC00..<0xE000).contains(low) else { throw SyntaxError(problem: "an unpaired surrogate escape") }
        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
      }
      guard let unicode = Unicode.Scalar(scalar) else { throw SyntaxError(problem: "an unpaired surrogate escape") }
      UTF8.encode(unicode) { decoded.append($0) }
    default:
      throw SyntaxError(problem: "an unknown escape in a string")
    }
  }

  private mutating func readHex4() throws -> UInt16 {
    var value: UInt16 = 0
    for _ in 0..<4 {
      guard let byte = next() else { throw SyntaxError(problem: "a `\\u` escape without four hex digits") }
      let digit: UInt8
      switch byte {
      case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
      case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
      case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
      default: throw SyntaxError(problem: "a `\\u` escape without four hex digits")
      }
      value = value << 4 | UInt16(digit)
    }
    return value
  }

  private mutating func expectWord(_ word: StaticString) throws {
    let count = word.utf8CodeUnitCount
    guard index + count <= bytes.count,
      UnsafeRawBufferPointer(rebasing: bytes[index..<index + count]).elementsEqual(
        UnsafeBufferPointer(start: word.utf8Start, count: count))
    else { throw SyntaxError(problem: "unexpected character") }
    index += count
  }

  private mutating func skipWhitespace() {
    while index < bytes.count {
      switch bytes[index] {
      case 0x20, 0x0A, 0x0D, 0x09: index += 1
      default: return
      }
    }
  }

  private func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }

  private mutating func next() -> UInt8? {
    guard index < bytes.count else { return nil }
    defer { index += 1 }
    return bytes[index]
  }
}
