/// The compression filter around an archive's tar stream.
///
/// Archives are written with gzip, zstd, xz or none; bzip2 is read too, as other tools write it.
public enum Compression: String, Sendable, CaseIterable, Codable {
  case gzip, zstd, xz, bzip2, none

  /// The file name ending for an archive with this compression.
  public var fileExtension: String {
    switch self {
    case .gzip: return ".tar.gz"
    case .zstd: return ".tar.zst"
    case .xz: return ".tar.xz"
    case .bzip2: return ".tar.bz2"
    case .none: return ".tar"
    }
  }

  /// The compression a file name's ending stands for (`.tar.zst`, `.tgz`, …); nil for another name.
  public init?(fileName: String) {
    let name = fileName.lowercased()
    let endings: [(String, Compression)] = [
      (".tar.gz", .gzip), (".tgz", .gzip), (".tar.zst", .zstd), (".tzst", .zstd), (".tar.xz", .xz), (".txz", .xz),
      (".tar.bz2", .bzip2), (".tbz2", .bzip2), (".tar", .none),
    ]
    guard let found = endings.first(where: { name.hasSuffix($0.0) }) else { return nil }
    self = found.1
  }
}
