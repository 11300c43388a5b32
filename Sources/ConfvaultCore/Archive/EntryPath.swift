/// The path rules every configuration path obeys, whether it comes from a folder, a manifest or a tar entry.
///
/// A configuration path is relative, UTF-8, made of non-empty components none of which is `.` or `..`,
/// free of control characters, and short enough for common file systems.
public enum EntryPath {
  /// Checks a path read from a tar entry and returns its components, without a leading `./`
  /// (ordinary tars made with `tar czf x.tgz -C dir .` start every name with it) and without a
  /// trailing `/` (directory entries).
  ///
  /// - Throws: `ArchiveRefusal` naming the entry and the broken rule.
  public static func components(
    ofEntryName bytes: [UInt8], limits: ArchiveLimits
  ) throws -> [Substring] {
    let shown = displayName(bytes)
    guard let name = String(validating: bytes, as: UTF8.self) else {
      throw ArchiveRefusal(entry: shown, rule: .notUTF8)
    }
    guard bytes.count <= limits.maxPathBytes else {
      throw ArchiveRefusal(
        entry: String(shown.prefix(80)) + "…", rule: .nameTooLong,
        detail: "\(bytes.count) bytes, limit \(limits.maxPathBytes)")
    }
    var trimmed = Substring(name)
    if trimmed.hasPrefix("/") {
      throw ArchiveRefusal(entry: shown, rule: .absolutePath)
    }
    while trimmed.hasPrefix("./") { trimmed = trimmed.dropFirst(2) }
    if trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
    if trimmed.isEmpty || trimmed == "." { return [] }
    let parts = trimmed.split(separator: "/", omittingEmptySubsequences: false)
    try check(parts, shown: shown, limits: limits)
    return parts
  }

  /// Checks a configuration-relative path (from a manifest or a folder) and returns it unchanged.
  ///
  /// - Throws: `ArchiveRefusal` naming `shownAs` (the path as the user knows it) and the broken rule.
  @discardableResult
  public static func validate(
    relativePath path: String, shownAs: String? = nil, limits: ArchiveLimits
  ) throws -> String {
    let shown = shownAs ?? displayName(Array(path.utf8))
    guard path.utf8.count <= limits.maxPathBytes else {
      throw ArchiveRefusal(
        entry: String(shown.prefix(80)) + "…", rule: .nameTooLong,
        detail: "\(path.utf8.count) bytes, limit \(limits.maxPathBytes)")
    }
    if path.hasPrefix("/") { throw ArchiveRefusal(entry: shown, rule: .absolutePath) }
    let parts = path.split(separator: "/", omittingEmptySubsequences: false)
    try check(parts, shown: shown, limits: limits)
    return path
  }

  private static func check(_ parts: [Substring], shown: String, limits: ArchiveLimits) throws {
    for part in parts {
      if part.isEmpty { throw ArchiveRefusal(entry: shown, rule: .emptyComponent) }
      if part == ".." { throw ArchiveRefusal(entry: shown, rule: .parentComponent) }
      if part == "." { throw ArchiveRefusal(entry: shown, rule: .dotComponent) }
      if part.utf8.count > limits.maxComponentBytes {
        throw ArchiveRefusal(
          entry: shown, rule: .nameTooLong,
          detail: "a component of \(part.utf8.count) bytes, limit \(limits.maxComponentBytes)")
      }
      if part.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
        throw ArchiveRefusal(entry: shown, rule: .controlCharacter)
      }
    }
  }

  /// Whether `a` sorts before `b` in byte order, the order of archives and tree digests.
  public static func byteOrder(_ a: String, _ b: String) -> Bool {
    a.utf8.lexicographicallyPrecedes(b.utf8)
  }

  /// The first path in `paths` that is also a folder of another path (`a` and `a/b`), if any.
  public static func fileAndFolderConflict(in paths: [String]) -> (file: String, inside: String)? {
    let files = Set(paths.map { Array($0.utf8) })
    for path in paths {
      let bytes = Array(path.utf8)
      for index in bytes.indices where bytes[index] == UInt8(ascii: "/") {
        if files.contains(Array(bytes[..<index])) {
          return (String(decoding: bytes[..<index], as: UTF8.self), path)
        }
      }
    }
    return nil
  }
}
