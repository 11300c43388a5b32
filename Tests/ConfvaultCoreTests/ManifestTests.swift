import Crypto
import Foundation
import Testing

@testable import ConfvaultCore

@Suite struct ManifestTests {
  static let files = [
    ManifestFile(
      path: "settings.yaml", size: 12, mode: .regular,
      sha256: SHA256Hex.of(Data("level: info\n".utf8))),
    ManifestFile(
      path: "entities/customer.json", size: 3, mode: .executable,
      sha256: SHA256Hex.of(Data("{}\n".utf8))),
  ]

  @Test("the tree digest is SHA-256 of `<mode> <sha256> <path>\\n` per file, in path byte order")
  func treeDigestDefinition() {
    let lines =
      "0755 \(Self.files[1].sha256) entities/customer.json\n" + "0644 \(Self.files[0].sha256) settings.yaml\n"
    let expected = "sha256:" + SHA256Hex.of(Data(lines.utf8)).value
    #expect(TreeDigest(files: Self.files).value == expected)
    #expect(TreeDigest(files: Self.files.reversed()).value == expected, "order of the input does not matter")
  }

  @Test("the manifest is written a piece at a time, byte for byte as Foundation's JSON encoder writes it")
  func streamedEncoding() throws {
    let awkward = String(decoding: (0..<0x80).map { UInt8($0) }, as: UTF8.self) + "/é\u{2028}\u{10FFFF}\u{7F}"
    var many = (0..<3_000).map { index in
      ManifestFile(
        path: "team-\(index % 7)/service-\(index)/deployment \"\(index)\".yaml", size: Int64(index * 131),
        mode: index % 5 == 0 ? .executable : .regular, sha256: SHA256Hex.of(Data("\(index)".utf8)))
    }
    many.append(ManifestFile(path: "odd/" + awkward, size: 1, mode: .regular, sha256: Self.files[0].sha256))
    let version = Manifest.VersionInfo(
      number: 42, author: "ana \"the\" admin\n", createdAt: Date(timeIntervalSince1970: 1_800_000_000),
      comment: awkward, origin: "push", syncedAt: Date(timeIntervalSince1970: 1_800_000_123))
    let manifests = [
      Manifest(app: nil, environment: nil, version: nil, files: []),
      Manifest(app: "shop", environment: "prod", version: nil, files: Self.files),
      Manifest(app: awkward, environment: "a/b", version: version, files: many),
      Manifest(
        app: "x", environment: "y",
        version: Manifest.VersionInfo(
          number: 1, author: "", createdAt: Date(timeIntervalSince1970: 0), comment: "", origin: "import",
          syncedAt: nil), files: Self.files),
    ]
    for manifest in manifests {
      let expected = try JSONCoding.encoder().encode(manifest)
      let encoder = ManifestEncoder(manifest)
      var pieces: [Int] = []
      var streamed = Data()
      encoder.write { piece in
        pieces.append(piece.count)
        streamed.append(contentsOf: piece)
      }
      #expect(streamed == expected, "\(String(decoding: streamed.prefix(300), as: UTF8.self))")
      #expect(encoder.byteCount() == expected.count && manifest.encoded() == expected)
      #expect(pieces.allSatisfy { $0 <= ManifestEncoder.pieceSize + 4_096 })
      if manifest.app != awkward {  // (no app may have that name: the reader refuses it)
        #expect(try Manifest.decode(streamed, limits: .default) == manifest)
      }
    }
  }

  @Test("byte order puts `a.txt` before `a/b` and upper case before lower case")
  func byteOrder() {
    let sorted = ["b", "a/b", "a.txt", "B", "é", "z"].sorted(by: EntryPath.byteOrder)
    #expect(sorted == ["B", "a.txt", "a/b", "b", "z", "é"])
  }

  @Test("a manifest encodes with sorted keys and explicit nulls, and decodes to itself")
  func encoding() throws {
    let manifest = Manifest(app: "inventory", environment: nil, version: nil, files: Self.files)
    let text = String(decoding: manifest.encoded(), as: UTF8.self)
    #expect(text.contains("\"environment\" : null"))
    #expect(text.contains("\"version\" : null"))
    let keys = ["app", "environment", "fileCount", "files", "format", "formatVersion", "generator"]
    let positions = keys.map { text.range(of: "\"\($0)\"")!.lowerBound }
    #expect(positions == positions.sorted())
    #expect(manifest.files.map(\.path) == ["entities/customer.json", "settings.yaml"])
    #expect(manifest.totalSize == 15 && manifest.fileCount == 2)
    let decoded = try Manifest.decode(manifest.encoded(), limits: .default)
    #expect(decoded == manifest)
  }

  @Test("version times are ISO 8601 UTC to the second")
  func versionDates() throws {
    let created = Date(timeIntervalSince1970: 1_795_168_800)  // 2026-11-20T10:00:00Z
    let version = Manifest.VersionInfo(
      number: 12, author: "ana", createdAt: created, comment: "add discount field", origin: "push",
      syncedAt: nil)
    let manifest = Manifest(app: "inventory", environment: "production", version: version, files: Self.files)
    let text = String(decoding: manifest.encoded(), as: UTF8.self)
    #expect(text.contains("\"createdAt\" : \"2026-11-20T10:00:00Z\""))
    #expect(text.contains("\"syncedAt\" : null"))
    #expect(try Manifest.decode(manifest.encoded(), limits: .default).version == version)
  }

  @Test("a manifest that disagrees with itself is refused")
  func inconsistent() throws {
    let manifest = Manifest(app: "inventory", environment: nil, version: nil, files: Self.files)
    var object = try #require(try JSONSerialization.jsonObject(with: manifest.encoded()) as? [String: Any])
    for (key, value, phrase) in [
      ("fileCount", 3 as Any, "fileCount is 3"), ("totalSize", 99 as Any, "totalSize is 99"),
    ] {
      var changed = object
      changed[key] = value
      let data = try JSONSerialization.data(withJSONObject: changed)
      #expect {
        try Manifest.decode(data, limits: .default)
      } throws: { error in
        (error as? ArchiveRefusal)?.description.contains(phrase) == true
      }
    }
    object["files"] = [["path": "x", "size": 1, "mode": "0600", "sha256": String(repeating: "a", count: 64)]]
    let badMode = try JSONSerialization.data(withJSONObject: object)
    #expect(throws: ArchiveRefusal.self) { try Manifest.decode(badMode, limits: .default) }

    // The files are judged one by one in path order: the first broken rule is the one reported.
    let digest = String(repeating: "a", count: 64)
    for (files, rule) in [
      ([("A", 1), ("a", 1), ("z", -1)], ArchiveRefusal.Rule.caseCollision),
      ([("A", 1), ("a", 1), ("a", 1)], .caseCollision),
      ([("A", -1), ("a", 1)], .manifestInvalid),
      ([("B", 1), ("B", 1), ("b", 1)], .duplicatePath),
    ] {
      object["files"] = files.map { ["path": $0.0, "size": $0.1, "mode": "0644", "sha256": digest] }
      object["fileCount"] = files.count
      let data = try JSONSerialization.data(withJSONObject: object)
      #expect(
        performing: { try Manifest.decode(data, limits: .default) },
        throws: { ($0 as? ArchiveRefusal)?.rule == rule })
    }
  }
}

/// The manifest's own JSON reader: what it accepts and what it refuses.
@Suite struct ManifestDecoderTests {
  /// The encoded manifest of `ManifestTests.files`, as text to edit.
  static var good: String {
    String(
      decoding: Manifest(app: "shop", environment: "prod", version: nil, files: ManifestTests.files).encoded(),
      as: UTF8.self)
  }

  func refusal(_ text: String) -> ArchiveRefusal? {
    do {
      _ = try Manifest.decode(Data(text.utf8), limits: .default)
      return nil
    } catch {
      return error as? ArchiveRefusal
    }
  }

  @Test("escapes are resolved in keys and values; whitespace and key order are free")
  func escapes() throws {
    let edited = Self.good.replacingOccurrences(of: #""app" : "shop""#, with: #""\u0061pp":"sh\u006fp""#)
    #expect(edited != Self.good)
    #expect(try Manifest.decode(Data(edited.utf8), limits: .default).app == "shop")
    let compact = try JSONSerialization.data(
      withJSONObject: try JSONSerialization.jsonObject(with: Data(Self.good.utf8)))
    #expect(try Manifest.decode(compact, limits: .default) == Manifest.decode(Data(Self.good.utf8), limits: .default))
  }

  /// Decodes `data` through the streaming reader, in pieces of the sizes `cuts` picks.
  static func decodeInPieces(_ data: Data, pieces cuts: () -> Int) throws -> Manifest {
    try data.withUnsafeBytes { bytes in
      var start = 0
      return try Manifest.decode(sizeHint: bytes.count, limits: .default) {
        let end = min(start + max(cuts(), 1), bytes.count)
        defer { start = end }
        return UnsafeRawBufferPointer(rebasing: bytes[start..<end])
      }
    }
  }

  @Test("a manifest cut into pieces anywhere (inside a string, an escape, a number, a word) decodes as when whole")
  func pieces() throws {
    let awkward = "odd \"quoted\"/é/日本/😀"
    var files = ManifestTests.files
    files.append(ManifestFile(path: awkward, size: 12_345, mode: .executable, sha256: files[0].sha256))
    let version = Manifest.VersionInfo(
      number: 7, author: "ana \"admin\"\n", createdAt: Date(timeIntervalSince1970: 1_800_000_000),
      comment: "tab\there, é", origin: "push", syncedAt: nil)
    let data = Manifest(app: "shop", environment: "prod", version: version, files: files).encoded()
    let whole = try Manifest.decode(data, limits: .default)
    #expect(whole.files.contains { $0.path == awkward } && whole.version == version)
    var random = SystemRandomNumberGenerator()
    for size in [1, 2, 3, 7, 64] {
      #expect(try Self.decodeInPieces(data, pieces: { size }) == whole, "pieces of \(size)")
    }
    for _ in 0..<50 {
      #expect(try Self.decodeInPieces(data, pieces: { Int.random(in: 1...40, using: &random) }) == whole)
    }
    // A document cut short stays refused however it is cut.
    let short = data.prefix(data.count - 2)
    for size in [1, 5, 4_096] {
      #expect(throws: ArchiveRefusal.self) { try Self.decodeInPieces(short, pieces: { size }) }
    }
  }

  @Test("when the pieces stop coming (a read error, a corrupt archive), that is the error, not the JSON cut short")
  func sourceFailure() throws {
    struct Broken: Error {}
    let data = Data(Self.good.utf8)
    var given = 0
    #expect(throws: Broken.self) {
      try data.withUnsafeBytes { bytes in
        try Manifest.decode(sizeHint: bytes.count, limits: .default) {
          given += 1
          guard given == 1 else { throw Broken() }
          return UnsafeRawBufferPointer(rebasing: bytes[0..<40])
        }
      }
    }
    #expect(given == 2, "the failing source was asked once, and not again")
  }

  @Test("files listed out of order come out in path byte order, with the same tree digest")
  func unsortedFiles() throws {
    var object = try #require(try JSONSerialization.jsonObject(with: Data(Self.good.utf8)) as? [String: Any])
    let files = try #require(object["files"] as? [Any])
    object["files"] = Array(files.reversed())
    let decoded = try Manifest.decode(try JSONSerialization.data(withJSONObject: object), limits: .default)
    #expect(decoded.files.map(\.path) == ["entities/customer.json", "settings.yaml"])
    #expect(decoded.treeDigest == TreeDigest(files: ManifestTests.files))
  }

  @Test(
    "what is not one well-formed JSON object is refused as not valid",
    arguments: [
      "", "[]", "{\"format\": \"confvault-archive\"", "{} {}", "{\"a\": 01}", "{\"a\": \"\\ud800\"}",
      "{\"a\": tru}", "{\"a\": \"tab\there\"}", "{\"a\": " + String(repeating: "[", count: 100_000),
    ])
  func malformed(text: String) {
    let refused = refusal(text)
    #expect(refused?.rule == .manifestInvalid && refused?.description.contains("not a JSON object") == true)
  }

  @Test("a byte order mark, UTF-16, bad UTF-8 and an upper-case digest are each refused for what they are")
  func encodingDetails() throws {
    let good = Self.good
    func detail(_ data: Data) -> String? {
      do {
        _ = try Manifest.decode(data, limits: .default)
        return nil
      } catch {
        return (error as? ArchiveRefusal).map { "\($0)" }
      }
    }
    #expect(detail(Data([0xEF, 0xBB, 0xBF]) + Data(good.utf8))?.contains("starts with a byte order mark") == true)
    #expect(detail(good.data(using: .utf16LittleEndian)!)?.contains("looks like UTF-16") == true)
    var broken = Data(good.utf8)
    broken[try #require(broken.firstRange(of: Data("shop".utf8))).lowerBound + 2] = 0xFF
    #expect(detail(broken)?.contains("not valid UTF-8") == true)
    let digest = ManifestTests.files[0].sha256.value
    let upper = good.replacingOccurrences(of: digest, with: digest.uppercased())
    #expect(upper != good)
    #expect(detail(Data(upper.utf8))?.contains("not 64 lowercase hex digits") == true)
  }

  @Test("a missing or mistyped field is named; a newer format version is judged before its fields")
  func fields() throws {
    let noCount = Self.good.replacingOccurrences(of: #""fileCount" : 2,"#, with: "")
    #expect(noCount != Self.good)
    #expect(refusal(noCount)?.description.contains("`fileCount` is missing") == true)
    let textSize = Self.good.replacingOccurrences(of: #""size" : 12"#, with: #""size" : "12""#)
    #expect(textSize != Self.good)
    #expect(refusal(textSize)?.description.contains(".size`: expected an integer") == true)
    let newer = textSize.replacingOccurrences(of: #""formatVersion" : 1"#, with: #""formatVersion" : 2"#)
    #expect(refusal(newer)?.rule == .manifestNewerVersion)
  }

  @Test("a key twice deep inside an unknown field is refused too")
  func duplicateInUnknownField() {
    let edited = Self.good.replacingOccurrences(
      of: #""app" : "shop","#, with: #""app" : "shop", "extra" : [{"x" : 1, "\u0078" : 2}],"#)
    #expect(edited != Self.good)
    #expect(refusal(edited)?.description.contains("`x` appears twice") == true)
  }
}

@Suite struct EntryPathTests {
  @Test(
    "unsafe names are refused with their rule",
    arguments: [
      ("/etc/passwd", ArchiveRefusal.Rule.absolutePath),
      ("config/../x", .parentComponent),
      ("..", .parentComponent),
      ("config//x", .emptyComponent),
      ("config/./x", .dotComponent),
      ("config/a\u{7}b", .controlCharacter),
      ("config/" + String(repeating: "x", count: 256), .nameTooLong),
    ])
  func refused(name: String, rule: ArchiveRefusal.Rule) {
    #expect {
      try EntryPath.normalized(entryName: Array(name.utf8), limits: .default)
    } throws: { error in
      (error as? ArchiveRefusal)?.rule == rule
    }
  }

  @Test(
    "a relative path breaking a rule is refused with it, whether its other bytes are plain ASCII or not",
    arguments: [
      ("a/b\\c", ArchiveRefusal.Rule.backslash),
      ("a/b\u{7F}", .controlCharacter),
      ("é/\u{85}b", .controlCharacter),
      ("a/\u{202E}b", .bidiControl),
      ("a//b", .emptyComponent),
      ("a/", .emptyComponent),
      ("./a", .dotComponent),
      ("a/..", .parentComponent),
      ("a/" + String(repeating: "x", count: 256), .nameTooLong),
      ("é/" + String(repeating: "x", count: 256), .nameTooLong),
    ])
  func relativePathRefused(path: String, rule: ArchiveRefusal.Rule) {
    #expect {
      try EntryPath.validate(relativePath: path, limits: .default)
    } throws: { error in
      (error as? ArchiveRefusal)?.rule == rule
    }
  }

  @Test("a relative path within the rules is accepted as it is, ASCII or not")
  func relativePathAccepted() throws {
    for path in ["a", "a/b.json", "..a/a../...", "a b/c~#", "é/ü.yaml", "x/" + String(repeating: "x", count: 255)] {
      #expect(try EntryPath.validate(relativePath: path, limits: .default) == path)
    }
  }

  @Test("invalid UTF-8 is refused and shown with escapes")
  func invalidUTF8() {
    #expect {
      try EntryPath.normalized(entryName: Array("config/caf".utf8) + [0xE9], limits: .default)
    } throws: { error in
      let refusal = error as? ArchiveRefusal
      return refusal?.rule == .notUTF8 && refusal?.entry == "config/caf\\xe9"
    }
  }

  @Test("a leading ./ and a trailing / are how other tools write names, and are accepted")
  func accepted() throws {
    func normalized(_ name: String) throws -> String {
      try EntryPath.normalized(entryName: Array(name.utf8), limits: .default)
    }
    #expect(try normalized("./config/a.json") == "config/a.json")
    #expect(try normalized("config/") == "config")
    #expect(try normalized("./") == "")
    #expect(try normalized("config/..a/a../...") == "config/..a/a../...", "dots inside names are fine")
  }

  /// Distinct paths made of `names`: how many and how deep drawn from the ranges.
  static func randomPaths(of names: [String], count: ClosedRange<Int>, depth: ClosedRange<Int>) -> [String] {
    Array(
      Set(
        (0..<Int.random(in: count)).map { _ in
          (0..<Int.random(in: depth)).map { _ in names.randomElement()! }.joined(separator: "/")
        }))
  }

  @Test("a path that is also a folder of another is found")
  func fileAndFolder() {
    #expect(EntryPath.fileAndFolderConflict(in: ["a", "a/b"])?.file == "a")
    #expect(EntryPath.fileAndFolderConflict(in: ["a.json", "a/b", "ab/c"]) == nil)
    // Siblings that byte order puts between `a` and `a/…`, in any order given.
    let between = ["a/b/c", "a-b", "a.txt", "a", "a-b/x", "a.txt.d/y"]
    #expect(EntryPath.fileAndFolderConflict(in: between).map { [$0.file, $0.inside] } == ["a", "a/b/c"])
    #expect(EntryPath.fileAndFolderConflict(in: ["a-b", "a.txt", "a/b", "a-b.c/d", "b/a", "b/a-"]) == nil)

    // Against the plain definition, on random trees of short names.
    for _ in 0..<300 {
      let paths = Self.randomPaths(of: ["a", "b", "a-", "a.", "a0", "é"], count: 1...12, depth: 1...3)
      let files = Set(paths)
      let expected = paths.sorted(by: EntryPath.byteOrder).first { file in
        paths.contains { $0.hasPrefix(file + "/") }
      }
      let found = EntryPath.fileAndFolderConflict(in: paths)
      #expect(found?.file == expected, "\(paths)")
      if let found { #expect(files.contains(found.file) && found.inside.hasPrefix(found.file + "/")) }
    }
    // Each path a prefix of all that follow (`x`, `x-`, `x--`, …) and none a folder: found by halves,
    // not by a walk over every path that follows.
    let chain = (0..<2_000).map { "x" + String(repeating: "-", count: $0) }
    #expect(EntryPath.fileAndFolderConflict(in: chain.reversed()) == nil)
    #expect(EntryPath.fileAndFolderConflict(in: chain + ["x---/y"])?.inside == "x---/y")
  }

  @Test("paths a case-insensitive file system would store as one are found, each with the nearest earlier one")
  func caseCollisions() {
    /// Each path that collides with an earlier one, by the plain definition: every path folded.
    func expected(_ sorted: [String]) -> [Int: Int] {
      var last: [String: Int] = [:]
      var collisions: [Int: Int] = [:]
      for (index, path) in sorted.enumerated() {
        if let earlier = last.updateValue(index, forKey: EntryPath.caseFolded(path)) { collisions[index] = earlier }
      }
      return collisions
    }
    func found(_ paths: [String]) -> [String]? {
      let sorted = paths.sorted(by: EntryPath.byteOrder)
      let collisions = EntryPath.caseCollisions(inSorted: sorted)
      #expect(collisions == expected(sorted), "\(sorted)")
      return collisions.keys.min().map { [sorted[$0], sorted[collisions[$0]!]] }
    }
    #expect(found(["README.md", "readme.md", "a"]) == ["readme.md", "README.md"])
    #expect(found(["a/B.yaml", "a/b.yaml"]) == ["a/b.yaml", "a/B.yaml"])
    #expect(found(["A", "B", "\u{212A}"]) == nil, "the Kelvin sign folds to k, not to a path here")
    #expect(found(["k", "\u{212A}"]) == ["\u{212A}", "k"], "the Kelvin sign folds to k")
    #expect(found(["A", "a", "\u{C1}"]) == ["a", "A"] && found(["AB", "Ab", "a", "ab"]) == ["Ab", "AB"])
    #expect(found(["CAFÉ", "café"]) != nil && found(["é", "e"]) == nil && found(["plain", "paths"]) == nil)
    for _ in 0..<300 {
      _ = found(Self.randomPaths(of: ["a", "A", "b", "é", "É", "k", "\u{212A}", "x"], count: 1...6, depth: 1...2))
    }
  }

  /// The encoding check's verdict on `data` given in pieces of the sizes `cuts` picks.
  static func encodingVerdict(_ data: Data, pieces cuts: () -> Int) -> Bool {
    var check = ManifestEncodingCheck()
    return data.withUnsafeBytes { bytes in
      var start = 0
      do {
        while start < bytes.count {
          let end = min(start + max(cuts(), 1), bytes.count)
          try check.check(UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
          start = end
        }
        try check.finish()
        return true
      } catch {
        return false
      }
    }
  }

  @Test(
    "UTF-8 is checked piece by piece, a character cut between pieces checked whole, with the same verdict as a whole string"
  )
  func piecewiseUTF8() {
    let text = Data(String(repeating: "päth/日本/😀-", count: 20_000).utf8)
    #expect(text.count > 3 * (64 << 10))
    var random = SystemRandomNumberGenerator()
    let anySize = { Int.random(in: 1...(1 << 17), using: &random) }
    let tiny = { Int.random(in: 1...5, using: &random) }
    #expect(Self.encodingVerdict(text, pieces: anySize) && Self.encodingVerdict(text.prefix(3_000), pieces: tiny))
    for _ in 0..<200 {
      var damaged = text
      let at = Int.random(in: 0..<damaged.count, using: &random)
      damaged[at] = [0x80, 0xC0, 0xFF, 0xE2, 0xF0].randomElement(using: &random)!
      let whole = String(validating: damaged, as: UTF8.self) != nil
      #expect(Self.encodingVerdict(damaged, pieces: anySize) == whole, "byte \(at)")
      let near = damaged.subdata(in: max(0, at - 40)..<min(damaged.count, at + 40))
      #expect(
        Self.encodingVerdict(near, pieces: tiny) == (String(validating: near, as: UTF8.self) != nil), "byte \(at)")
    }
    for cut in [(64 << 10) - 1, 64 << 10, (64 << 10) + 1] {
      var broken = text.prefix(cut)
      broken.append(0xE6)  // a character's first byte, its last bytes missing
      #expect(!Self.encodingVerdict(broken, pieces: anySize) && !Self.encodingVerdict(broken, pieces: { cut }))
    }
    #expect(Self.encodingVerdict(Data(), pieces: anySize))
  }

  @Test("a key given twice in one object is refused, also when one spelling escapes it")
  func duplicateKeys() throws {
    let good = String(
      decoding: Manifest(app: "shop", environment: "prod", version: nil, files: ManifestTests.files).encoded(),
      as: UTF8.self)
    #expect(try Manifest.decode(Data(good.utf8), limits: .default).app == "shop")
    let twice = good.replacingOccurrences(of: #""app" : "shop","#, with: #""app" : "shop", "\u0061pp" : "billing","#)
    #expect(twice != good, "the test edited the manifest")
    #expect {
      try Manifest.decode(Data(twice.utf8), limits: .default)
    } throws: { error in
      (error as? ArchiveRefusal)?.rule == .manifestInvalid && "\(error)".contains("`app` appears twice")
    }
    let nested = good.replacingOccurrences(of: #""mode" : "0644","#, with: #""mode" : "0644", "mode" : "0755","#)
    #expect(nested != good)
    #expect(throws: ArchiveRefusal.self) { try Manifest.decode(Data(nested.utf8), limits: .default) }
  }
}
