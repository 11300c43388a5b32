import Foundation

/// A file's bytes read as lines of text: UTF-8, or else Latin-1 (every byte is a character, so old
/// configuration files in ISO 8859-1 still diff as text); never bytes with a NUL, which are binary.
struct TextLines {
  enum Encoding: String {
    case utf8 = "UTF-8"
    case latin1 = "Latin-1"
  }

  /// Each line with its ending (`\n`, `\r\n`, or nothing for a last line without one).
  var lines: [String]
  var encoding: Encoding

  init?(_ data: Data) {
    guard !data.contains(0) else { return nil }
    if let text = String(validating: data, as: UTF8.self) {
      self.init(text, encoding: .utf8)
    } else {
      self.init(String(decoding: data.map { UInt16($0) }, as: UTF16.self), encoding: .latin1)
    }
  }

  init(_ text: String, encoding: Encoding = .utf8) {
    self.encoding = encoding
    var lines: [String] = []
    var start = text.utf8.startIndex
    for index in text.utf8.indices where text.utf8[index] == UInt8(ascii: "\n") {
      let next = text.utf8.index(after: index)
      lines.append(String(text[start..<next]))
      start = next
    }
    if start != text.utf8.endIndex { lines.append(String(text[start...])) }
    self.lines = lines
  }

  /// Whether every line ends with CR LF.
  var allCRLF: Bool { !lines.isEmpty && lines.allSatisfy(Self.endsWithCRLF) }

  /// The line-ending convention, as a note names it.
  var endings: String {
    let crlf = lines.count(where: Self.endsWithCRLF)
    let lf = lines.count(where: Self.endsWithLF) - crlf
    return crlf == 0 ? "LF" : lf == 0 ? "CRLF" : "mixed LF and CRLF"
  }

  // A CR LF pair is one `Character` in Swift: line endings are looked at as bytes.
  static func endsWithLF(_ line: String) -> Bool { line.utf8.last == 0x0A }

  static func endsWithCRLF(_ line: String) -> Bool {
    line.utf8.count >= 2 && line.utf8.suffix(2).elementsEqual([0x0D, 0x0A])
  }

  /// `line` without its last `count` bytes (ASCII line-ending bytes).
  static func dropping(_ count: Int, from line: String) -> String {
    String(decoding: line.utf8.dropLast(count), as: UTF8.self)
  }
}

/// Unified diffs of texts, with line endings shown only where they change.
enum TextDiff {
  /// What a text diff found.
  struct Result {
    /// Unified diff lines (`@@ -a,b +c,d @@`, then ` `, `-`, `+` lines).
    var hunks: [String]
    /// What the hunks cannot say: a change of encoding or of line endings.
    var notes: [String]
  }

  /// The unified diff from `old` to `new` with `context` lines around each change.
  ///
  /// - Throws: `LineDiff.TooLarge` when aligning the lines takes more work than allowed.
  static func compare(_ old: TextLines, _ new: TextLines, context: Int = 3) throws -> Result {
    var notes: [String] = []
    if old.encoding != new.encoding {
      notes.append("encoding: \(old.encoding.rawValue) -> \(new.encoding.rawValue)")
    } else if new.encoding == .latin1 {
      notes.append("read as \(TextLines.Encoding.latin1.rawValue) (not UTF-8)")
    }
    // Lines are compared with their endings, so a changed ending is a changed line; endings common
    // to every line of both sides are left out of what is shown.
    let hideCRLF = old.allCRLF && new.allCRLF
    func shown(_ line: String) -> String {
      if hideCRLF, TextLines.endsWithCRLF(line) { return TextLines.dropping(2, from: line) }
      return TextLines.endsWithLF(line) ? TextLines.dropping(1, from: line) : line
    }
    if old.endings != new.endings { notes.append("line endings: \(old.endings) -> \(new.endings)") }
    if let oldLast = old.lines.last, let newLast = new.lines.last,
      TextLines.endsWithLF(oldLast) != TextLines.endsWithLF(newLast)
    {
      notes.append(TextLines.endsWithLF(newLast) ? "a final newline was added" : "the final newline was removed")
    }
    let bare = { (lines: [String]) in
      lines.map {
        TextLines.endsWithCRLF($0)
          ? TextLines.dropping(2, from: $0) : TextLines.endsWithLF($0) ? TextLines.dropping(1, from: $0) : $0
      }
    }
    if old.lines != new.lines && old.endings != new.endings && bare(old.lines) == bare(new.lines) {
      notes.append("only line endings changed")
      return Result(hunks: [], notes: notes)
    }
    var ids: [String: Int] = [:]
    var oldIDs: [Int] = []
    oldIDs.reserveCapacity(old.lines.count)
    for line in old.lines { oldIDs.append(intern(line, &ids)) }
    var newIDs: [Int] = []
    newIDs.reserveCapacity(new.lines.count)
    for line in new.lines { newIDs.append(intern(line, &ids)) }
    let script = try LineDiff.script(oldIDs, newIDs)
    let hunks = UnifiedHunks.lines(
      script, old: old.lines.map(shown), new: new.lines.map(shown), context: context)
    return Result(hunks: hunks, notes: notes)
  }

  private static func intern(_ line: String, _ ids: inout [String: Int]) -> Int {
    if let id = ids[line] { return id }
    let id = ids.count
    ids[line] = id
    return id
  }
}
