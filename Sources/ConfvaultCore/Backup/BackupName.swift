import Foundation

/// The name of a backup file: `<yyyyMMdd'T'HHmmss'Z'>-<app>-<env>-v<N>.tar.<ext>`, the UTC time first so
/// that a plain `ls` of an environment's folder lists its backups oldest first.
///
/// Names written before the time came first, `<app>-<env>-v<N>-<time>.tar.<ext>`, are still recognised,
/// so listing and retention handle both kinds in one folder. Only files whose names parse as either,
/// for the app and environment at hand, are ever deleted.
public struct BackupName: Sendable, Equatable, Comparable {
  /// Where the time stands in the name.
  public enum Layout: Sendable, Equatable {
    /// `<time>-<app>-<env>-v<N>.tar.<ext>`, written now.
    case timeFirst
    /// `<app>-<env>-v<N>-<time>.tar.<ext>`, written by earlier versions of confvault (whose version
    /// numbers sort `v16` before `v2`).
    case versionFirst
  }

  public var app: String
  public var environment: String
  public var version: Int
  /// Seconds since 1970, UTC, to the second.
  public var time: Int64
  public var compression: Compression
  public var layout: Layout

  public init(
    app: String, environment: String, version: Int, time: Int64, compression: Compression,
    layout: Layout = .timeFirst
  ) {
    self.app = app
    self.environment = environment
    self.version = version
    self.time = time
    self.compression = compression
    self.layout = layout
  }

  public var fileName: String {
    switch layout {
    case .timeFirst:
      return "\(BackupName.stamp(time))-\(app)-\(environment)-v\(version)\(compression.fileExtension)"
    case .versionFirst:
      return "\(app)-\(environment)-v\(version)-\(BackupName.stamp(time))\(compression.fileExtension)"
    }
  }

  /// Parses `fileName` as a backup of `app`/`environment`, in either layout; nil for any other name.
  public init?(fileName: String, app: String, environment: String) {
    if let name = BackupName.timeFirst(fileName, app: app, environment: environment) {
      self = name
    } else if let name = BackupName.versionFirst(fileName, app: app, environment: environment) {
      self = name
    } else {
      return nil
    }
  }

  /// Older first; the same second is ordered by version.
  public static func < (a: BackupName, b: BackupName) -> Bool {
    (a.time, a.version) < (b.time, b.version)
  }

  private static let stampLength = 16  // 20261120T023000Z

  private static func timeFirst(_ fileName: String, app: String, environment: String) -> BackupName? {
    guard let time = parseStamp(String(fileName.prefix(stampLength))) else { return nil }
    let rest = fileName.dropFirst(stampLength)
    let prefix = "-\(app)-\(environment)-v"
    guard rest.hasPrefix(prefix), let (version, ending) = leadingVersion(rest.dropFirst(prefix.count)),
      let compression = Compression.allCases.first(where: { $0.fileExtension == ending })
    else { return nil }
    return BackupName(
      app: app, environment: environment, version: version, time: time, compression: compression, layout: .timeFirst)
  }

  private static func versionFirst(_ fileName: String, app: String, environment: String) -> BackupName? {
    let prefix = "\(app)-\(environment)-v"
    guard fileName.hasPrefix(prefix), let (version, rest) = leadingVersion(fileName.dropFirst(prefix.count)),
      rest.hasPrefix("-")
    else { return nil }
    let stamped = rest.dropFirst()
    guard let time = parseStamp(String(stamped.prefix(stampLength))),
      let compression = Compression.allCases.first(where: {
        $0.fileExtension == stamped.dropFirst(stampLength)
      })
    else { return nil }
    return BackupName(
      app: app, environment: environment, version: version, time: time, compression: compression,
      layout: .versionFirst)
  }

  /// A version number at the start of `text` (no sign, no leading zero) and what follows it.
  private static func leadingVersion(_ text: Substring) -> (Int, Substring)? {
    let digits = text.prefix { $0.isASCII && $0.isNumber }
    guard !digits.hasPrefix("0"), let version = Int(digits), version > 0 else { return nil }
    return (version, text.dropFirst(digits.count))
  }

  static func stamp(_ time: Int64) -> String {
    let iso = Timestamp.iso8601(Date(timeIntervalSince1970: TimeInterval(time)))  // 2026-11-20T10:00:00Z
    return iso.replacingOccurrences(of: "-", with: "").replacingOccurrences(of: ":", with: "")
  }

  static func parseStamp(_ text: String) -> Int64? {
    let bytes = Array(text.utf8)
    guard bytes.count == stampLength, bytes[8] == UInt8(ascii: "T"), bytes[15] == UInt8(ascii: "Z"),
      bytes[0..<8].allSatisfy({ (0x30...0x39).contains($0) }),
      bytes[9..<15].allSatisfy({ (0x30...0x39).contains($0) })
    else { return nil }
    let s = { (from: Int, count: Int) in String(decoding: bytes[from..<from + count], as: UTF8.self) }
    let iso = "\(s(0, 4))-\(s(4, 2))-\(s(6, 2))T\(s(9, 2)):\(s(11, 2)):\(s(13, 2))Z"
    guard let date = Timestamp.parse(iso), stamp(Int64(date.timeIntervalSince1970)) == text else { return nil }
    return Int64(date.timeIntervalSince1970)
  }
}
