import Foundation

/// The path rules every configuration path obeys, whether it comes from a folder, a manifest or a tar entry.
///
/// A configuration path is relative, UTF-8, made of non-empty components none of which is `.` or `..`,
/// free of control characters, and short enough for common file systems.
public enum EntryPath {
  /// The folder a configuration path is in, "" for the top: "deploy/api" for "deploy/api/app.yaml".
  ///
  /// Paths are split where Swift's characters split them, as stored folders always were: a `/`
  /// that a combining mark follows makes one character with it and splits nothing. The `/` is
  /// looked for among the bytes when every `/` is a character of its own (`slashesStandAlone`), as
  /// a search by characters costs far more.
  public static func folder(of path: String) -> String {
    guard slashesStandAlone(path) else { return path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "" }
    return path.utf8.lastIndex(of: 0x2F).map { String(path[..<$0]) } ?? ""
  }

  /// The last component of a configuration path: "app.yaml" for "deploy/api/app.yaml".
  public static func name(of path: String) -> Substring {
    guard slashesStandAlone(path) else {
      return path.lastIndex(of: "/").map { path[path.index(after: $0)...] } ?? path[...]
    }
    return path.utf8.lastIndex(of: 0x2F).map { path[path.utf8.index(after: $0)...] } ?? path[...]
  }

  /// Whether each `/` of `path` is a character of its own: none is followed by a non-ASCII byte,
  /// which may start a mark that joins it (a combining accent, a joiner). Then splitting the bytes
  /// at `/` splits the characters at `/`.
  public static func slashesStandAlone(_ path: String) -> Bool {
    let standAlone = { (bytes: UnsafeBufferPointer<UInt8>) -> Bool in
      var afterSlash = false
      for byte in bytes {
        if afterSlash && byte >= 0x80 { return false }
        afterSlash = byte == 0x2F
      }
      return true
    }
    return withBytes(path, standAlone)
  }

  /// The length in bytes of the folder of `path` (up to its last `/`, 0 for none) and the name
  /// after it, for a path whose slashes stand alone (`slashesStandAlone`): `folder(of:)` and
  /// `name(of:)` at once, for callers that go over every path of a tree.
  static func splitAtLastSlash(_ path: String) -> (folderLength: Int, name: String) {
    let split = { (bytes: UnsafeBufferPointer<UInt8>) -> (Int, String) in
      var slash = bytes.count
      while slash > 0 && bytes[slash - 1] != 0x2F { slash -= 1 }
      let name = String(decoding: UnsafeBufferPointer(rebasing: bytes[slash...]), as: UTF8.self)
      return (max(slash - 1, 0), name)
    }
    return withBytes(path, split)
  }

  /// The offset of the last `/` in `path`'s bytes, if it has one.
  static func lastSlash(_ path: String) -> Int? { withBytes(path) { lastSlash($0) } }

  /// The offset of the last `/` in `bytes`, if they have one.
  static func lastSlash(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? { bytes.lastIndex(of: 0x2F) }

  /// Whether the first `length` bytes of `path` are the bytes of `prefix`, compared with `memcmp`.
  static func hasPrefix(_ path: String, length: Int, equalTo prefix: String) -> Bool {
    guard prefix.utf8.count == length, path.utf8.count >= length else { return false }
    return withBytes(path) { x in
      withBytes(prefix) { y in compareBytes(UnsafeBufferPointer(rebasing: x[..<length]), y) == 0 }
    }
  }

  /// Calls `body` with the UTF-8 bytes of `text`, where the string keeps them (native strings keep
  /// them together), or else with a copy: the paths of a tree are looked at over their bytes, never
  /// through the generic UTF-8 view.
  static func withBytes<Result>(_ text: String, _ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
    text.utf8.withContiguousStorageIfAvailable(body) ?? Array(text.utf8).withUnsafeBufferPointer(body)
  }

  /// How `x` compares with `y` in byte order, as `memcmp` says (a shorter run of equal bytes first):
  /// below zero when it comes before, zero when they are the same bytes.
  static func compareBytes(_ x: UnsafeBufferPointer<UInt8>, _ y: UnsafeBufferPointer<UInt8>) -> Int32 {
    let common = min(x.count, y.count)
    let order = common == 0 ? 0 : memcmp(x.baseAddress!, y.baseAddress!, common)
    return order != 0 ? order : x.count < y.count ? -1 : x.count > y.count ? 1 : 0
  }

  /// Checks a path read from a tar entry and returns it without a leading `./` (ordinary tars made
  /// with `tar czf x.tgz -C dir .` start every name with it) or a trailing `/` (directory entries);
  /// empty for the archive's root folder itself.
  ///
  /// - Parameter folder: a folder that holds the configuration (`config/` in an archive with a
  ///   manifest): a name in it is held to the length limit without it, as its configuration path is.
  /// - Throws: `ArchiveRefusal` naming the entry and the broken rule.
  public static func normalized(entryName bytes: [UInt8], limits: ArchiveLimits, below folder: String = "") throws
    -> String
  {
    let shown = { displayName(bytes) }
    guard let name = String(validating: bytes, as: UTF8.self) else {
      throw ArchiveRefusal(entry: shown(), rule: .notUTF8)
    }
    var uncounted = 0
    while bytes[uncounted...].starts(with: [UInt8(ascii: "."), UInt8(ascii: "/")]) { uncounted += 2 }
    if !folder.isEmpty && bytes[uncounted...].starts(with: folder.utf8) { uncounted += folder.utf8.count }
    guard bytes.count - uncounted <= limits.maxPathBytes else {
      throw ArchiveRefusal(
        entry: String(shown().prefix(80)) + "…", rule: .nameTooLong,
        detail: "\(bytes.count - uncounted) bytes, limit \(limits.maxPathBytes)")
    }
    var trimmed = Substring(name)
    if trimmed.hasPrefix("/") {
      throw ArchiveRefusal(entry: shown(), rule: .absolutePath)
    }
    while trimmed.hasPrefix("./") { trimmed = trimmed.dropFirst(2) }
    if trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
    if trimmed.isEmpty || trimmed == "." { return "" }
    try check(trimmed.utf8, shown: shown, limits: limits)
    return String(trimmed)
  }

  /// Checks a configuration-relative path (from a manifest or a folder) and returns it unchanged.
  ///
  /// - Parameter prefix: what precedes the path where the user sees it (`config/` in an archive).
  /// - Throws: `ArchiveRefusal` naming the path as the user knows it and the broken rule.
  @discardableResult
  public static func validate(
    relativePath path: String, shownAs prefix: String = "", limits: ArchiveLimits
  ) throws -> String {
    let shown = { displayName(Array((prefix + path).utf8)) }
    guard path.utf8.count <= limits.maxPathBytes else {
      throw ArchiveRefusal(
        entry: String(shown().prefix(80)) + "…", rule: .nameTooLong,
        detail: "\(path.utf8.count) bytes, limit \(limits.maxPathBytes)")
    }
    if path.utf8.first == UInt8(ascii: "/") { throw ArchiveRefusal(entry: shown(), rule: .absolutePath) }
    // Over the bytes themselves where the string keeps them together (a manifest checks 100,000).
    let checked: Void? = try path.utf8.withContiguousStorageIfAvailable { bytes in
      if !isPlain(bytes, limits: limits) { try check(bytes, shown: shown, limits: limits) }
    }
    if checked == nil { try check(path.utf8, shown: shown, limits: limits) }
    return path
  }

  /// Whether `path` is printable ASCII without backslashes, in components that are neither empty,
  /// `.`, `..` nor too long: what most paths are, told by a pass much lighter than `check`'s (a scan
  /// or a manifest checks every path). A path that is not is left to `check`, which says why.
  private static func isPlain(_ path: UnsafeBufferPointer<UInt8>, limits: ArchiveLimits) -> Bool {
    var start = 0
    for index in 0...path.count {
      if index < path.count && path[index] != UInt8(ascii: "/") {
        guard (0x20..<0x7F).contains(path[index]) && path[index] != UInt8(ascii: "\\") else { return false }
        continue
      }
      let length = index - start
      guard length > 0 && length <= limits.maxComponentBytes else { return false }
      if path[start] == UInt8(ascii: ".") && (length == 1 || (length == 2 && path[start + 1] == UInt8(ascii: "."))) {
        return false
      }
      start = index + 1
    }
    return true
  }

  /// One pass over the bytes: every `/`-separated component is non-empty, not `.` or `..`, short
  /// enough, and free of control characters (C0, DEL and C1), bidirectional controls (which make a
  /// name read differently from what it is) and backslashes (a separator on Windows). The bytes are
  /// valid UTF-8 here, so a two- or three-byte sequence is matched on its lead bytes.
  ///
  /// - Parameter shown: the name as the user knows it, computed only for a refusal.
  private static func check<Bytes: Collection<UInt8>>(
    _ path: Bytes, shown: () -> String, limits: ArchiveLimits
  ) throws {
    var length = 0
    var dots = 0
    func endComponent() throws {
      if length == 0 { throw ArchiveRefusal(entry: shown(), rule: .emptyComponent) }
      if length == dots && dots == 2 { throw ArchiveRefusal(entry: shown(), rule: .parentComponent) }
      if length == dots && dots == 1 { throw ArchiveRefusal(entry: shown(), rule: .dotComponent) }
      if length > limits.maxComponentBytes {
        throw ArchiveRefusal(
          entry: shown(), rule: .nameTooLong,
          detail: "a component of \(length) bytes, limit \(limits.maxComponentBytes)")
      }
    }
    var previous: (UInt8, UInt8) = (0, 0)
    for byte in path {
      defer { previous = (previous.1, byte) }
      if byte == UInt8(ascii: "/") {
        try endComponent()
        length = 0
        dots = 0
        continue
      }
      if byte < 0x20 || byte == 0x7F { throw ArchiveRefusal(entry: shown(), rule: .controlCharacter) }
      if byte == UInt8(ascii: "\\") { throw ArchiveRefusal(entry: shown(), rule: .backslash) }
      // U+0080–U+009F: C2 80–C2 9F.
      if previous.1 == 0xC2 && (0x80...0x9F).contains(byte) {
        throw ArchiveRefusal(entry: shown(), rule: .controlCharacter, detail: "a C1 control character")
      }
      if isBidiControl(previous, byte) { throw ArchiveRefusal(entry: shown(), rule: .bidiControl) }
      if byte == UInt8(ascii: ".") { dots += 1 }
      length += 1
    }
    try endComponent()
  }

  /// U+061C, U+200E, U+200F, U+202A–U+202E and U+2066–U+2069, ending with `byte`.
  private static func isBidiControl(_ previous: (UInt8, UInt8), _ byte: UInt8) -> Bool {
    switch (previous.0, previous.1, byte) {
    case (_, 0xD8, 0x9C): return true
    case (0xE2, 0x80, 0x8E), (0xE2, 0x80, 0x8F), (0xE2, 0x80, 0xAA...0xAE), (0xE2, 0x81, 0xA6...0xA9): return true
    default: return false
    }
  }

  /// The paths of `paths` (in path byte order, each once) that a case-insensitive file system would
  /// store under the name of an earlier one: each one's index, with the index of the nearest earlier
  /// path of the same folded form. Empty when there are none.
  ///
  /// A path of lowercase ASCII is its own folded form, and no two paths are equal: only paths with
  /// an upper-case or non-ASCII byte can collide, with each other or with the path equal to their
  /// folded form (found by halves). Most configuration trees have none, and nothing is built for them.
  public static func caseCollisions(inSorted paths: [String]) -> [Int: Int] {
    var groups: [String: [Int]] = [:]
    // Paths of lower-case ASCII alone fold to themselves: most are passed over by their bytes.
    let mayFold = { (bytes: UnsafeBufferPointer<UInt8>) in bytes.contains { $0 >= 0x80 || (0x41...0x5A).contains($0) } }
    for (index, path) in paths.enumerated()
    where withBytes(path, mayFold) {
      groups[caseFolded(path), default: []].append(index)
    }
    var collisions: [Int: Int] = [:]
    for (form, members) in groups {
      var indices = members
      let low = paths.partitionPoint { byteOrder($0, form) }
      if low < paths.count, paths[low] == form, !indices.contains(low) { indices.append(low) }
      indices.sort()
      for (earlier, later) in zip(indices, indices.dropFirst()) { collisions[later] = earlier }
    }
    return collisions
  }

  /// The form two paths share when a case-insensitive file system (macOS, Windows) would store them
  /// under one name.
  public static func caseFolded(_ path: String) -> String {
    if path.utf8.allSatisfy({ $0 < 0x80 }) { return path.lowercased() }
    return path.lowercased().precomposedStringWithCanonicalMapping
  }

  /// The Unicode NFC form of a path: how Confvault stores every name, so that one name has one byte
  /// sequence (libarchive composes pax names when it reads them; macOS writes decomposed ones).
  /// ASCII paths, the usual case, are returned as they are.
  public static func nfc(_ path: String) -> String {
    isASCII(path) ? path : path.precomposedStringWithCanonicalMapping
  }

  /// Whether `path` is in NFC form, compared byte for byte (Swift's `==` ignores normalisation).
  public static func isNFC(_ path: String) -> Bool {
    isASCII(path) || sameBytes(nfc(path), path)
  }

  /// Whether `path` is all ASCII, which every normalisation leaves as it is.
  private static func isASCII(_ path: String) -> Bool {
    withBytes(path) { bytes in bytes.allSatisfy { $0 < 0x80 } }
  }

  /// Whether `a` sorts before `b` in byte order, the order of archives and tree digests.
  ///
  /// Compared with `memcmp` over the bytes (`withBytes`): sorts of 100,000 paths spent most of their
  /// time in the generic comparison of UTF-8 views.
  public static func byteOrder(_ a: String, _ b: String) -> Bool {
    withBytes(a) { x in withBytes(b) { y in compareBytes(x, y) < 0 } }
  }

  /// Whether `a` and `b` are the same bytes (Swift's `==` takes a name and its NFC form as equal),
  /// compared as `byteOrder` compares them.
  public static func sameBytes(_ a: String, _ b: String) -> Bool {
    guard a.utf8.count == b.utf8.count else { return false }
    return withBytes(a) { x in withBytes(b) { y in compareBytes(x, y) == 0 } }
  }

  /// A path in `paths` that is also a folder of another path (`a` and `a/b`), if any: the first in
  /// path byte order.
  ///
  /// In byte order, the paths that start with `a` follow `a` together, and among them those under
  /// `a/` come after siblings like `a-b` and `a.txt`: one comparison per path usually settles it, a
  /// search by halves otherwise. No set of every path and folder is built.
  public static func fileAndFolderConflict(in paths: [String]) -> (file: String, inside: String)? {
    let inOrder = zip(paths, paths.dropFirst()).allSatisfy { !byteOrder($1, $0) }
    let sorted = inOrder ? paths : paths.sorted(by: byteOrder)
    for (index, path) in sorted.enumerated() {
      guard index + 1 < sorted.count, sorted[index + 1].utf8.starts(with: path.utf8) else { continue }
      let low = sorted.partitionPoint(from: index + 1) { precedesFolder($0, path) }
      if low < sorted.count, isInside(sorted[low], folder: path) { return (path, sorted[low]) }
    }
    return nil
  }

  /// Whether `path` comes before `folder` followed by `/`, in byte order.
  private static func precedesFolder(_ path: String, _ folder: String) -> Bool {
    var bytes = path.utf8.makeIterator()
    for byte in folder.utf8 {
      guard let next = bytes.next() else { return true }
      if next != byte { return next < byte }
    }
    guard let next = bytes.next() else { return true }
    return next < UInt8(ascii: "/")
  }

  /// Whether `path` starts with `folder` followed by `/`.
  private static func isInside(_ path: String, folder: String) -> Bool {
    path.utf8.starts(with: folder.utf8)
      && path.utf8.dropFirst(folder.utf8.count).first == UInt8(ascii: "/")
  }
}
