import Foundation

/// Reads `confvault.json` in one pass over its bytes straight into a manifest's fields, a piece at a
/// time as the archive streams: no document tree is built, the document is never held whole, and each
/// file's entry is made as its object ends.
///
/// It reads JSON as RFC 8259 has it, and refuses a key given twice in one object (at any depth, escapes
/// resolved: readers keep the first or the last, so two readers would see two manifests). Each piece's
/// encoding is checked before it is read (`ManifestEncodingCheck`). A field missing or of the wrong
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

  /// Gives the document's next piece, empty at its end; a piece stays valid until the next call.
  typealias Source = () throws -> UnsafeRawBufferPointer

  private let source: Source
  /// The piece being read, and the position in it.
  private var bytes = UnsafeRawBufferPointer(start: nil, count: 0)
  private var index = 0
  private var ended = false
  private var encoding = ManifestEncodingCheck()
  /// Why the pieces stopped before the document's end: the source's error or the encoding's. It is
  /// what gets reported, over the syntax error it leads to.
  private var sourceFailure: (any Error)?
  /// About how many bytes the document has, to reserve the file list (never trusted beyond that).
  private let sizeHint: Int
  private var fields = Fields()

  private init(source: @escaping Source, sizeHint: Int) {
    self.source = source
    self.sizeHint = sizeHint
  }

  /// The manifest fields of the document `source` gives, piece by piece.
  ///
  /// - Parameter sizeHint: about how many bytes the document has; a false hint costs only memory
  ///   reserved up to a bound.
  /// - Throws: `SyntaxError` for a document that is not one JSON object, `DuplicateKey` for a key
  ///   twice in one object, `ManifestEncodingCheck.Problem` for bytes that are not UTF-8 text, or
  ///   whatever `source` throws.
  static func fields(sizeHint: Int, reading source: Source) throws -> Fields {
    try withoutActuallyEscaping(source) { source in
      var decoder = ManifestDecoder(source: source, sizeHint: sizeHint)
      do {
        try decoder.readDocument()
      } catch {
        throw decoder.sourceFailure ?? error
      }
      if let failure = decoder.sourceFailure { throw failure }
      return decoder.fields
    }
  }

  // MARK: The manifest's shape

  private mutating func readDocument() throws {
    skipWhitespace()
    guard peek() == UInt8(ascii: "{") else {
      throw SyntaxError(problem: peek() != nil ? "the document is not an object" : "the document is empty")
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
    guard peek() == nil else { throw SyntaxError(problem: "text after the document's object") }
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
      files.reserveCapacity(min(count, sizeHint / 64))
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

  /// The keys of a file's entry, in the order a missing one is reported.
  private static let fileKeys = ["path", "size", "mode", "sha256"]

  /// The bit of a file entry's key, for the key-twice check without a set per entry.
  private static func fileKeyBit(_ key: String) -> UInt8? {
    switch key {
    case "path": 1
    case "size": 2
    case "mode": 4
    case "sha256": 8
    default: nil
    }
  }

  private mutating func readFile(at position: Int) throws -> ManifestFile? {
    skipWhitespace()
    // Made only for a message: a manifest of 100,000 files would make 500,000 of them.
    func at(_ field: String = "") -> String { "files[\(position)]\(field)" }
    guard peek() == UInt8(ascii: "{") else {
      try skipValue(depth: 2)
      noteFieldError("`\(at())`: expected an object")
      return nil
    }
    var path: String?
    var size: Int64?
    var mode: FileMode?
    var sha256: SHA256Hex?
    var seen: UInt8 = 0
    try readObject(depth: 3, keyBit: Self.fileKeyBit) { decoder, key in
      switch key {
      case "path":
        path = try decoder.readString(at: at(".path"))
      case "size":
        size = try decoder.readInteger(at: at(".size"))
      case "mode":
        if let text = try decoder.readString(at: at(".mode")) {
          mode = FileMode(rawValue: text)
          if mode == nil { decoder.noteFieldError("`\(at(".mode"))`: `\(text)` is not 0644 or 0755") }
        }
      case "sha256":
        if let digest = decoder.readPlainDigest() {
          sha256 = digest
        } else if let text = try decoder.readString(at: at(".sha256")) {
          sha256 = SHA256Hex(text)
          if sha256 == nil { decoder.noteFieldError("`\(at(".sha256"))`: not 64 lowercase hex digits") }
        }
      default:
        try decoder.skipValue(depth: 3)
      }
      seen |= Self.fileKeyBit(key) ?? 0
    }
    for key in Self.fileKeys where seen & Self.fileKeyBit(key)! == 0 {
      noteFieldError("`\(at(".\(key)"))` is missing")
    }
    guard let path, let size, let mode, let sha256 else { return nil }
    return ManifestFile(path: path, size: size, mode: mode, sha256: sha256)
  }

  // MARK: Typed values: a wrong type is noted, and the value passed over

  private mutating func noteFieldError(_ problem: String) {
    if fields.fieldError == nil { fields.fieldError = problem }
  }

  /// A digest written as 64 lowercase hex digits in quotes, all in this piece, read straight from
  /// the bytes; nil (nothing read) for anything else, which the caller reads as a string.
  private mutating func readPlainDigest() -> SHA256Hex? {
    skipWhitespace()
    guard index + 66 <= bytes.count, bytes[index] == UInt8(ascii: "\""), bytes[index + 65] == UInt8(ascii: "\""),
      let digest = SHA256Hex(hex: UnsafeRawBufferPointer(rebasing: bytes[index + 1..<index + 65]))
    else { return nil }
    index += 66
    return digest
  }

  private mutating func readString(at path: @autoclosure () -> String) throws -> String? {
    guard case .string(let text) = try readScalar(depth: 2) else {
      noteFieldError("`\(path())`: expected a string")
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

  private mutating func readInteger(at path: @autoclosure () -> String) throws -> Int64? {
    guard case .integer(let number) = try readScalar(depth: 2) else {
      noteFieldError("`\(path())`: expected an integer")
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
  /// - Parameter keyBit: the bit of a key that can be told apart by one; other keys go into a set,
  ///   made only when one is met.
  private mutating func readObject(
    depth: Int, keyBit: (String) -> UInt8? = { _ in nil }, _ body: (inout ManifestDecoder, String) throws -> Void
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
      if let bit = keyBit(key) {
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
      throw SyntaxError(problem: peek() != nil ? "unexpected character" : "the document ends early")
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
    // The common case: no escape and all in this piece, so the bytes are the string (they are UTF-8).
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
    // An escape, or the string goes on in the next piece.
    var decoded = Array(bytes[start..<index])
    while true {
      guard let byte = next() else { throw SyntaxError(problem: "a string without its closing quote") }
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
    for at in 0..<word.utf8CodeUnitCount {
      guard next() == word.utf8Start[at] else { throw SyntaxError(problem: "unexpected character") }
    }
  }

  private mutating func skipWhitespace() {
    repeat {
      while index < bytes.count {
        switch bytes[index] {
        case 0x20, 0x0A, 0x0D, 0x09: index += 1
        default: return
        }
      }
    } while refill()
  }

  /// The byte the decoder stands on, the next piece read if this one is done; nil at the end.
  private mutating func peek() -> UInt8? {
    guard index < bytes.count || refill() else { return nil }
    return bytes[index]
  }

  private mutating func next() -> UInt8? {
    guard let byte = peek() else { return nil }
    index += 1
    return byte
  }

  /// Moves on to the next piece, its encoding checked; false at the document's end or when the
  /// source failed (kept in `sourceFailure`, so the reading ends as if the document did).
  private mutating func refill() -> Bool {
    guard !ended else { return false }
    bytes = UnsafeRawBufferPointer(start: nil, count: 0)
    index = 0
    do {
      let piece = try source()
      guard !piece.isEmpty else {
        ended = true
        try encoding.finish()
        return false
      }
      try encoding.check(piece)
      bytes = piece
      return true
    } catch {
      ended = true
      sourceFailure = error
      return false
    }
  }
}

/// Checks a manifest's encoding piece by piece, before it is read: UTF-8 without a byte order mark,
/// and without NUL bytes (UTF-16 text has them). A character cut between two pieces is checked whole.
struct ManifestEncodingCheck {
  /// The bytes are not UTF-8 text.
  struct Problem: Error {
    var problem: String
  }

  /// The start of a character the last piece ended inside.
  private var carry: [UInt8] = []
  private var started = false
  /// Validated at most this many bytes at a time, so no large string is made for it.
  private static let window = 64 << 10

  mutating func check(_ piece: UnsafeRawBufferPointer) throws(Problem) {
    if !started {
      started = true
      if piece.starts(with: [0xEF, 0xBB, 0xBF]) { throw Problem(problem: "it starts with a byte order mark") }
      if piece.starts(with: [0xFF, 0xFE]) || piece.starts(with: [0xFE, 0xFF]) {
        throw Problem(problem: "not UTF-8 (it looks like UTF-16)")
      }
    }
    if piece.contains(0) { throw Problem(problem: "not UTF-8 (it looks like UTF-16)") }
    var rest = piece[...]
    if !carry.isEmpty {
      while carry.count < 4, let byte = rest.first, byte & 0xC0 == 0x80 {
        carry.append(byte)
        rest = rest.dropFirst()
      }
      // The character may go on in the next piece still.
      if rest.isEmpty && carry.count < 4 { return }
      guard String(validating: carry, as: UTF8.self) != nil else { throw Problem(problem: "not valid UTF-8") }
      carry.removeAll(keepingCapacity: true)
    }
    // The last character may go on in the next piece: kept from its first byte.
    var end = rest.endIndex
    if let last = rest.last, last >= 0x80 {
      var first = end - 1
      while first > rest.startIndex, end - first < 4, rest[first] & 0xC0 == 0x80 { first -= 1 }
      if rest[first] & 0xC0 == 0xC0 {
        carry.append(contentsOf: rest[first...])
        end = first
      }
    }
    var start = rest.startIndex
    while start < end {
      // A window ends before a byte that starts a character, so none is cut in two.
      var stop = min(start + Self.window, end)
      while stop < end, stop > start + 1, piece[stop] & 0xC0 == 0x80 { stop -= 1 }
      guard String(validating: piece[start..<stop], as: UTF8.self) != nil else {
        throw Problem(problem: "not valid UTF-8")
      }
      start = stop
    }
  }

  /// At the document's end: a character cut short is not UTF-8.
  mutating func finish() throws(Problem) {
    guard carry.isEmpty || String(validating: carry, as: UTF8.self) != nil else {
      throw Problem(problem: "not valid UTF-8")
    }
    carry = []
  }
}
