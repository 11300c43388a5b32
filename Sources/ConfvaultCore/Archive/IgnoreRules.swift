import Foundation

/// Which entries of a configuration folder a push leaves out: built-in defaults, then the folder's own
/// `.confvaultignore`, in gitignore syntax.
///
/// Each line is a pattern: `#` starts a comment, blank lines are skipped, `!` re-includes what an
/// earlier pattern left out, a trailing `/` matches folders only, a `/` at the start or in the middle
/// anchors the pattern to the folder's root (otherwise it matches a name at any depth), and `*`, `?`,
/// `[a-z]`, `[!0-9]` and `**` work as in git. The last pattern that matches decides. A folder left
/// out is not looked into, so nothing below it can be re-included (as in git), and a large `.git`
/// costs nothing.
public struct IgnoreRules: Sendable, Equatable {
  /// The file in a folder's root that holds its rules; it is not pushed itself.
  public static let fileName = ".confvaultignore"

  /// What every push leaves out unless told otherwise: version control folders, editor swap and
  /// backup files, operating system litter, and the checkout record's folder.
  public static let builtInPatterns = [
    ".git/", ".hg/", ".svn/",
    "*.swp", "*.swo", "*~", "\\#*#", ".#*",
    ".DS_Store", "Thumbs.db", "desktop.ini",
    "/" + CheckoutRecord.folderName + "/",
  ]

  /// Leaves out nothing.
  public static let none = IgnoreRules(patterns: [])

  /// The built-in defaults alone.
  public static let builtIn = IgnoreRules(builtInPatterns.joined(separator: "\n"))

  /// The largest `.confvaultignore` read: rules, not data.
  static let largestFile = 1 << 20

  let patterns: [Pattern]
  /// Each pattern's first test over an ASCII path's bytes, in the patterns' order.
  private let screens: [Screen]
  /// The screens' literal bytes, one list for all.
  private let screenBytes: [UInt8]

  private init(patterns: [Pattern]) {
    self.patterns = patterns
    var bytes: [UInt8] = []
    let kept = { (literal: [Unicode.Scalar]) -> Range<Int>? in
      guard literal.allSatisfy(\.isASCII) else { return nil }
      let start = bytes.count
      bytes += literal.map { UInt8($0.value) }
      return start..<bytes.count
    }
    screens = patterns.map { pattern in
      Screen(
        anchored: pattern.anchored, foldersOnly: pattern.foldersOnly,
        wholeText: pattern.prefix.count == pattern.tokens.count, prefix: kept(pattern.prefix),
        suffix: kept(pattern.suffix))
    }
    screenBytes = bytes
  }

  /// The rules in `text`, one gitignore pattern a line.
  public init(_ text: String) {
    self.init(
      patterns: text.split(separator: "\n", omittingEmptySubsequences: false).compactMap { Pattern(line: $0) })
  }

  /// These rules followed by `other`'s, which win where both match.
  public func followed(by other: IgnoreRules) -> IgnoreRules {
    IgnoreRules(patterns: patterns + other.patterns)
  }

  /// The built-in defaults, then the rules of `root`'s `.confvaultignore` if it has one, then the
  /// `.confvaultignore` itself.
  ///
  /// - Throws: `.badInput` when the file is not a regular file, is larger than 1 MiB or not UTF-8;
  ///   `SystemError` when it cannot be read.
  public static func forFolder(_ root: String) throws -> IgnoreRules {
    let path = root + "/" + fileName
    let own = IgnoreRules("/" + fileName)
    var info = stat()
    guard lstat(path, &info) == 0 else {
      guard errno == ENOENT else { throw SystemError(.status, path) }
      return builtIn.followed(by: own)
    }
    guard info.st_mode & S_IFMT == S_IFREG else {
      throw OperationError(.badInput, "`\(path)` is not a regular file; it must hold ignore rules, one a line")
    }
    guard info.st_size <= largestFile else {
      throw OperationError(.badInput, "`\(path)` is larger than 1 MiB; it must hold ignore rules, one a line")
    }
    var bytes: [UInt8] = []
    try withUnsafeTemporaryAllocation(byteCount: 64 << 10, alignment: 16) { buffer in
      try ConfigurationFolder.stream(path, buffer: buffer) { bytes.append(contentsOf: $0) }
    }
    guard bytes.count <= largestFile, let text = String(validating: bytes, as: UTF8.self) else {
      throw OperationError(.badInput, "`\(path)` is not UTF-8 text of at most 1 MiB; it must hold ignore rules")
    }
    return builtIn.followed(by: IgnoreRules(text)).followed(by: own)
  }

  /// Whether the entry at `path` (relative, `/`-separated, NFC) is left out.
  ///
  /// The rules are asked of a folder before anything in it: a caller does not ask about the entries
  /// of a folder that is left out.
  public func ignores(_ path: String, isFolder: Bool) -> Bool {
    guard !patterns.isEmpty, mayMatch(path, isFolder: isFolder) else { return false }
    let full = Array(path.unicodeScalars)
    let name = full.lastIndex(of: "/").map { full[($0 + 1)...] } ?? full[...]
    var ignored = false
    for pattern in patterns where pattern.negated == ignored {
      if pattern.foldersOnly && !isFolder { continue }
      if pattern.matches(pattern.anchored ? full[...] : name) { ignored = !pattern.negated }
    }
    return ignored
  }
}

extension IgnoreRules {
  /// Whether some pattern may match `path`: false when the path is ASCII and no pattern for its kind
  /// of entry starts and ends as the path (or its name) does, looked at over the bytes. Most paths a
  /// scan meets end there, with no array of their characters made.
  ///
  /// A scan asks this of every path: it goes over plain numbers and one list of bytes, as copying a
  /// `Pattern` (five lists to retain and release) for each path and pattern took a tenth of a walk.
  private func mayMatch(_ path: String, isFolder: Bool) -> Bool {
    EntryPath.withBytes(path) { bytes in
      var nameStart = 0
      for (index, byte) in bytes.enumerated() {
        if byte >= 0x80 { return true }  // one scalar is no longer one byte
        if byte == 0x2F { nameStart = index + 1 }
      }
      return screens.withUnsafeBufferPointer { screens in
        screenBytes.withUnsafeBufferPointer { literals in
          screens.contains { screen in
            // A first or last character that is not ASCII is in no ASCII path.
            guard isFolder || !screen.foldersOnly, let prefix = screen.prefix, let suffix = screen.suffix else {
              return false
            }
            let text = UnsafeBufferPointer(rebasing: bytes[(screen.anchored ? 0 : nameStart)...])
            let (start, end) = (UnsafeBufferPointer(rebasing: literals[prefix]), literals[suffix])
            // As `Pattern.matches` turns paths away: a pattern of literals alone is the whole text.
            if screen.wholeText { return EntryPath.compareBytes(text, start) == 0 }
            return text.count >= start.count + end.count && text.starts(with: start)
              && text.suffix(end.count).elementsEqual(end)
          }
        }
      }
    }
  }

  /// What `mayMatch` asks of one pattern: plain values, nothing counted.
  private struct Screen: Sendable, Equatable {
    var anchored: Bool
    var foldersOnly: Bool
    /// The pattern is literals alone: it matches only the whole text.
    var wholeText: Bool
    /// Where in `screenBytes` the literals every match starts and ends with lie; nil when they are
    /// not ASCII.
    var prefix: Range<Int>?
    var suffix: Range<Int>?
  }

  /// One line of a rules file.
  struct Pattern: Sendable, Equatable {
    var negated: Bool
    var foldersOnly: Bool
    /// Matched against the whole relative path, not just the entry's name.
    var anchored: Bool
    var tokens: [Token]
    /// The literal scalars every match starts and ends with: most paths are turned away by these.
    var prefix: [Unicode.Scalar]
    var suffix: [Unicode.Scalar]

    init?(line: Substring) {
      var text = Array(EntryPath.nfc(String(line)).unicodeScalars)
      if text.last == "\r" { text.removeLast() }
      // Trailing spaces are dropped, unless the last one is escaped with a backslash.
      while text.last == " " && !(text.count >= 2 && text[text.count - 2] == "\\") { text.removeLast() }
      guard let first = text.first, first != "#" else { return nil }
      negated = first == "!"
      if negated { text.removeFirst() }
      foldersOnly = text.last == "/"
      if foldersOnly { text.removeLast() }
      anchored = text.contains("/")
      if text.first == "/" { text.removeFirst() }
      guard !text.isEmpty else { return nil }
      tokens = Token.parse(text)
      prefix = tokens.prefix { $0.literal != nil }.map { $0.literal! }
      suffix =
        prefix.count == tokens.count
        ? prefix : tokens.reversed().prefix { $0.literal != nil }.reversed().map { $0.literal! }
    }

    func matches(_ text: ArraySlice<Unicode.Scalar>) -> Bool {
      if prefix.count == tokens.count { return text.elementsEqual(prefix) }
      guard text.count >= prefix.count + suffix.count, text.starts(with: prefix),
        text.reversed().starts(with: suffix.reversed())
      else { return false }
      return Token.match(tokens, text)
    }
  }

  /// A piece of a glob.
  enum Token: Sendable, Equatable {
    case literal(Unicode.Scalar)
    /// `?`: one character, not `/`.
    case one
    /// `*`: any characters but `/`.
    case star
    /// `**/`: nothing, or any folders (`a/`, `a/b/`).
    case folders
    /// A trailing `/**`'s `**`: anything, `/` included.
    case anything
    /// `[…]`: one character (not `/`) in, or with `negated` not in, the set.
    case oneOf(ranges: [ClosedRange<Unicode.Scalar>], negated: Bool)

    var literal: Unicode.Scalar? {
      if case .literal(let scalar) = self { return scalar }
      return nil
    }

    static func parse(_ text: [Unicode.Scalar]) -> [Token] {
      var tokens: [Token] = []
      var index = 0
      while index < text.count {
        let scalar = text[index]
        switch scalar {
        case "\\":
          index += 1
          tokens.append(.literal(index < text.count ? text[index] : "\\"))
          index += 1
        case "?":
          tokens.append(.one)
          index += 1
        case "*":
          var end = index
          while end < text.count && text[end] == "*" { end += 1 }
          let wholeComponent = (index == 0 || text[index - 1] == "/") && (end == text.count || text[end] == "/")
          if end - index >= 2 && wholeComponent {
            if end == text.count {
              tokens.append(.anything)
            } else {
              tokens.append(.folders)
              end += 1
            }
          } else if tokens.last != .star {
            tokens.append(.star)
          }
          index = end
        case "[":
          if let (token, end) = characterClass(text, from: index) {
            tokens.append(token)
            index = end
          } else {
            tokens.append(.literal("["))
            index += 1
          }
        default:
          tokens.append(.literal(scalar))
          index += 1
        }
      }
      return tokens
    }

    /// The class opening at `start`, and the index after its `]`; nil when it is not closed (the `[`
    /// is then an ordinary character).
    static func characterClass(_ text: [Unicode.Scalar], from start: Int) -> (Token, Int)? {
      var index = start + 1
      let negated = index < text.count && (text[index] == "!" || text[index] == "^")
      if negated { index += 1 }
      var ranges: [ClosedRange<Unicode.Scalar>] = []
      var first = true
      while index < text.count {
        var scalar = text[index]
        if scalar == "]" && !first { return (.oneOf(ranges: ranges, negated: negated), index + 1) }
        first = false
        if scalar == "[" && index + 1 < text.count && text[index + 1] == ":",
          let close = (index + 2..<text.count).first(where: { text[$0] == ":" }),
          close + 1 < text.count && text[close + 1] == "]",
          let named = namedClasses[String(String.UnicodeScalarView(text[(index + 2)..<close]))]
        {
          ranges += named
          index = close + 2
          continue
        }
        if scalar == "\\" && index + 1 < text.count {
          index += 1
          scalar = text[index]
        }
        if index + 2 < text.count && text[index + 1] == "-" && text[index + 2] != "]" {
          var upper = text[index + 2]
          var end = index + 3
          if upper == "\\" && index + 3 < text.count {
            upper = text[index + 3]
            end += 1
          }
          if scalar <= upper { ranges.append(scalar...upper) }
          index = end
        } else {
          ranges.append(scalar...scalar)
          index += 1
        }
      }
      return nil
    }

    static let namedClasses: [String: [ClosedRange<Unicode.Scalar>]] = [
      "alnum": ["a"..."z", "A"..."Z", "0"..."9"], "alpha": ["a"..."z", "A"..."Z"], "digit": ["0"..."9"],
      "lower": ["a"..."z"], "upper": ["A"..."Z"], "xdigit": ["0"..."9", "a"..."f", "A"..."F"],
      "space": [" "..." ", "\t"..."\r"], "blank": [" "..." ", "\t"..."\t"],
      "punct": ["!"..."/", ":"..."@", "["..."`", "{"..."~"],
    ]

    /// Whether `tokens` match all of `text`: the set of positions reachable after each token, so the
    /// cost is bounded by tokens × characters whatever the stars.
    static func match(_ tokens: [Token], _ text: ArraySlice<Unicode.Scalar>) -> Bool {
      let text = Array(text)
      let count = text.count
      var reached = [Bool](repeating: false, count: count + 1)
      reached[0] = true
      var next = reached
      for token in tokens {
        for index in next.indices { next[index] = false }
        var any = false
        switch token {
        case .literal, .one, .oneOf:
          for index in 0..<count where reached[index] && token.accepts(text[index]) {
            next[index + 1] = true
            any = true
          }
        case .star:
          var open = false
          for index in 0...count {
            if reached[index] { open = true }
            if open {
              next[index] = true
              any = true
            }
            if index < count && text[index] == "/" { open = false }
          }
        case .anything:
          guard let first = reached.firstIndex(of: true) else { return false }
          for index in first...count { next[index] = true }
          any = true
        case .folders:
          var open = false
          for index in 0...count {
            if reached[index] {
              open = true
              next[index] = true
              any = true
            }
            if open && index > 0 && text[index - 1] == "/" {
              next[index] = true
              any = true
            }
          }
        }
        guard any else { return false }
        swap(&reached, &next)
      }
      return reached[count]
    }

    func accepts(_ scalar: Unicode.Scalar) -> Bool {
      switch self {
      case .literal(let literal): return scalar == literal
      case .one: return scalar != "/"
      case .oneOf(let ranges, let negated):
        return scalar != "/" && ranges.contains { $0.contains(scalar) } != negated
      case .star, .folders, .anything: return false
      }
    }
  }
}
