/// How much an archive from outside may hold, counted on the bytes actually read.
public struct ArchiveLimits: Sendable, Equatable {
  /// The most bytes one file may have.
  public var maxFileBytes: Int64
  /// The most bytes all files together may have.
  public var maxTotalBytes: Int64
  /// The most files an archive may hold.
  public var maxFiles: Int
  /// The longest path, in UTF-8 bytes, an entry may have.
  public var maxPathBytes: Int
  /// The longest single path component, in UTF-8 bytes (what common file systems accept).
  public var maxComponentBytes: Int
  /// The largest manifest read (it is decoded as it streams; its file list is held).
  public var maxManifestBytes: Int

  public init(
    maxFileBytes: Int64 = 256 << 20,
    maxTotalBytes: Int64 = 2 << 30,
    maxFiles: Int = 100_000,
    maxPathBytes: Int = 1_024,
    maxComponentBytes: Int = 255,
    maxManifestBytes: Int = 64 << 20
  ) {
    self.maxFileBytes = maxFileBytes
    self.maxTotalBytes = maxTotalBytes
    self.maxFiles = maxFiles
    self.maxPathBytes = maxPathBytes
    self.maxComponentBytes = maxComponentBytes
    self.maxManifestBytes = maxManifestBytes
  }

  public static let `default` = ArchiveLimits()
}
