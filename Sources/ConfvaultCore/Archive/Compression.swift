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
}
