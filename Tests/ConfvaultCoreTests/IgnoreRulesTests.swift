import Foundation
import Testing

@testable import ConfvaultCore

/// The ignore rules a push and status apply: gitignore syntax, the built-in defaults, and a scan that
/// never looks into a folder it leaves out.
@Suite struct IgnoreRulesTests {
  /// Which of `paths` (a trailing `/` marks a folder) `rules` leave out.
  static func ignored(_ rules: IgnoreRules, _ paths: [String]) -> [String] {
    paths.filter { path in
      let folder = path.hasSuffix("/")
      return rules.ignores(folder ? String(path.dropLast()) : path, isFolder: folder)
    }
  }

  @Test("the built-in rules leave out VCS folders, editor and OS litter, and the checkout record's folder")
  func builtIn() {
    let left = Self.ignored(
      .builtIn,
      [
        ".git/", "sub/.git/", ".hg/", ".svn/", "a.swp", "deep/b.swo", "settings.yaml~", "#notes#", ".#lock",
        ".DS_Store", "x/Thumbs.db", "desktop.ini", ".confvault/",
        // Kept:
        ".git", ".gitignore", "git/", "swp", "a.swp.yaml", "~backup", "#half", "sub/.confvault/", "settings.yaml",
        "Desktop.ini.json",
      ])
    #expect(
      left == [
        ".git/", "sub/.git/", ".hg/", ".svn/", "a.swp", "deep/b.swo", "settings.yaml~", "#notes#", ".#lock",
        ".DS_Store", "x/Thumbs.db", "desktop.ini", ".confvault/",
      ])
    #expect(Self.ignored(.none, [".git/", "a.swp", ".DS_Store"]).isEmpty)
  }

  @Test("a path turned away by its bytes alone is one no pattern matches: random paths, ASCII and not")
  func bytePreCheck() {
    let rules = IgnoreRules.builtIn.followed(
      by: IgnoreRules(
        """
        *.log
        !keep.log
        a*b
        [ab]x
        **/deep
        é*
        *é
        /top/*.md
        x?
        #*
        build/
        a
        """))
    /// What `ignores` says, by every pattern in turn with no check over the bytes first.
    func everyPattern(_ path: String, isFolder: Bool) -> Bool {
      let full = Array(path.unicodeScalars)
      let name = full.lastIndex(of: "/").map { full[($0 + 1)...] } ?? full[...]
      var ignored = false
      for pattern in rules.patterns where pattern.negated == ignored {
        if pattern.foldersOnly && !isFolder { continue }
        if pattern.matches(pattern.anchored ? full[...] : name) { ignored = !pattern.negated }
      }
      return ignored
    }
    var generator = SeededGenerator(seed: 11)
    let pieces = [
      "a", "b", "x", ".", "#", "~", "é", "e\u{301}", "log", "keep", "swp", "deep", "top", "md", "build", "git",
    ]
    var matched = 0
    for _ in 0..<5_000 {
      let components = (0..<Int.random(in: 1...3, using: &generator)).map { _ in
        (0..<Int.random(in: 1...3, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
      }
      let path = EntryPath.nfc(components.joined(separator: "/"))
      for isFolder in [false, true] {
        let expected = everyPattern(path, isFolder: isFolder)
        #expect(rules.ignores(path, isFolder: isFolder) == expected, "`\(path)` (folder: \(isFolder))")
        if expected { matched += 1 }
      }
    }
    #expect(matched > 1_000, "the paths meet the patterns often enough to test both answers")
  }

  @Test("comments, blank lines, negation, folders only, anchoring, and the last match decides")
  func syntax() {
    let rules = IgnoreRules(
      """
      # a comment, then a blank line

      *.log
      !keep.log
      build/
      /secrets.yaml
      docs/*.md
      \\#literal
      \\!bang
      trailing.txt   \r
      """)
    #expect(
      Self.ignored(
        rules,
        [
          "a.log", "x/y/b.log", "keep.log", "x/keep.log", "build/", "x/build/", "build", "secrets.yaml",
          "x/secrets.yaml", "docs/a.md", "docs/x/a.md", "x/docs/a.md", "#literal", "!bang", "trailing.txt",
          "# a comment, then a blank line", "log",
        ]) == [
          "a.log", "x/y/b.log", "build/", "x/build/", "secrets.yaml", "docs/a.md", "#literal", "!bang", "trailing.txt",
        ]
    )
    // A negation re-includes what a built-in rule left out.
    let reincluded = IgnoreRules.builtIn.followed(by: IgnoreRules("!important.swp"))
    #expect(Self.ignored(reincluded, ["important.swp", "other.swp"]) == ["other.swp"])
  }

  @Test("*, ?, character classes and ** match as in git")
  func globs() {
    #expect(
      Self.ignored(IgnoreRules("a*z"), ["az", "abcz", "a/z", "x/abz", "abzz", "ab"]) == ["az", "abcz", "x/abz", "abzz"])
    #expect(Self.ignored(IgnoreRules("/a*z"), ["az", "a/z", "x/az"]) == ["az"])
    #expect(Self.ignored(IgnoreRules("v?.yaml"), ["v1.yaml", "v12.yaml", "v.yaml"]) == ["v1.yaml"])
    #expect(Self.ignored(IgnoreRules("v[0-9].yaml"), ["v1.yaml", "va.yaml"]) == ["v1.yaml"])
    #expect(Self.ignored(IgnoreRules("v[!0-9].yaml"), ["v1.yaml", "va.yaml", "v/.yaml"]) == ["va.yaml"])
    #expect(Self.ignored(IgnoreRules("v[^a-c].yaml"), ["va.yaml", "vd.yaml"]) == ["vd.yaml"])
    #expect(Self.ignored(IgnoreRules("[[:digit:]]*"), ["1a", "a1"]) == ["1a"])
    #expect(Self.ignored(IgnoreRules("[]x]"), ["]", "x", "y"]) == ["]", "x"])
    #expect(Self.ignored(IgnoreRules("a[b"), ["a[b", "ab"]) == ["a[b"], "an unclosed class is a literal `[`")
    #expect(
      Self.ignored(IgnoreRules("**/cache"), ["cache", "a/cache", "a/b/cache", "a/cached"]) == [
        "cache", "a/cache", "a/b/cache",
      ])
    #expect(
      Self.ignored(IgnoreRules("logs/**"), ["logs/a", "logs/a/b", "logs", "x/logs/a"]) == ["logs/a", "logs/a/b"])
    #expect(
      Self.ignored(IgnoreRules("a/**/b"), ["a/b", "a/x/b", "a/x/y/b", "a/xb", "b"]) == ["a/b", "a/x/b", "a/x/y/b"])
    #expect(Self.ignored(IgnoreRules("a**b"), ["ab", "axxb", "a/b"]) == ["ab", "axxb"], "** inside a name is *")
    #expect(Self.ignored(IgnoreRules("cafe\u{301}.json"), ["caf\u{E9}.json"]) == ["caf\u{E9}.json"], "patterns are NFC")
  }

  @Test("a scan leaves out what the rules say, without looking into left-out folders")
  func scan() throws {
    let root = NSTemporaryDirectory() + "/confvault-ignore-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: root) }
    func write(_ path: String, _ text: String = "x\n") throws {
      let url = URL(fileURLWithPath: root + "/" + path)
      try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
      try Data(text.utf8).write(to: url)
    }
    try write("settings.yaml")
    try write("entities/customer.json")
    try write(".git/HEAD")
    try write(".DS_Store")
    try write("entities/.customer.json.swp")
    try write("notes.tmp")
    try write("keep.tmp")
    try write(".confvault/checkout.json", "{}")
    try write(".confvaultignore", "*.tmp\n!keep.tmp\n")
    // A symlink would be refused, but not inside a folder that is left out.
    try FileManager.default.createSymbolicLink(atPath: root + "/.git/link", withDestinationPath: "/etc/passwd")

    let found = try ConfigurationFolder.scan(root, ignoring: try IgnoreRules.forFolder(root))
    #expect(found.files.map(\.path) == ["entities/customer.json", "keep.tmp", "settings.yaml"])
    #expect(found.ignored == [".DS_Store", ".confvaultignore", ".git/", "entities/.customer.json.swp", "notes.tmp"])

    #expect(throws: FolderRefusal.self) { try ConfigurationFolder.scan(root + "/.git", ignoring: .builtIn) }
    try FileManager.default.removeItem(atPath: root + "/.git/link")
    let everything = try ConfigurationFolder.scan(root, ignoring: .none)
    #expect(everything.files.map(\.path).contains(".git/HEAD") && everything.ignored.isEmpty)
    #expect(!everything.files.map(\.path).contains(".confvault/checkout.json"), "the record is never pushed")
    // Pack's scan keeps everything, the record included.
    #expect(try ConfigurationFolder.scan(root).map(\.path).contains(".confvault/checkout.json"))

    // A record folder holding more than the record is left out, and said so.
    try write(".confvault/notes.txt")
    #expect(try ConfigurationFolder.scan(root, ignoring: .builtIn).ignored.contains(".confvault/"))
  }

  @Test("a .confvaultignore that is not a regular UTF-8 file is refused")
  func unreadableRules() throws {
    let root = NSTemporaryDirectory() + "/confvault-ignore-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: root) }
    try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    #expect(try IgnoreRules.forFolder(root) == IgnoreRules.builtIn.followed(by: IgnoreRules("/.confvaultignore")))
    try Data([0x2A, 0xFF, 0x0A]).write(to: URL(fileURLWithPath: root + "/.confvaultignore"))
    #expect { try IgnoreRules.forFolder(root) } throws: { ($0 as? OperationError)?.kind == .badInput }
    try FileManager.default.removeItem(atPath: root + "/.confvaultignore")
    try FileManager.default.createSymbolicLink(atPath: root + "/.confvaultignore", withDestinationPath: "/etc/passwd")
    #expect { try IgnoreRules.forFolder(root) } throws: { ($0 as? OperationError)?.kind == .badInput }
  }
}
