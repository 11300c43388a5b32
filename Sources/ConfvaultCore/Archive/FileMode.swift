/// The only permission information a configuration keeps: whether a file is executable.
public enum FileMode: String, Sendable, Codable, Hashable, CaseIterable {
  case regular = "0644"
  case executable = "0755"

  /// The mode for a file whose permission bits are `permissions`: any execute bit makes it executable.
  public init(permissions: UInt32) {
    self = permissions & 0o111 != 0 ? .executable : .regular
  }

  /// The permission bits written to disk and into tar headers.
  public var permissions: UInt32 {
    switch self {
    case .regular: return 0o644
    case .executable: return 0o755
    }
  }
}
