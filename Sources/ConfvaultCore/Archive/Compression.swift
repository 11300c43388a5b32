/// The compression filter around an archive's tar stream.
public enum Compression: String, Sendable, CaseIterable, Codable {
  case gzip, zstd, xz, none

  /// The file name ending for an archive with this compression.
  public var fileExtension: String {
    switch self {
    case .gzip: return ".tar.gz"
    case .zstd: return ".tar.zst"
    case .xz: return ".tar.xz"
    case .none: return ".tar"
    }
  }
}
