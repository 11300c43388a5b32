import Foundation

/// The name of a backup file: `<app>-<env>-v<N>-<yyyyMMdd'T'HHmmss'Z'>.tar.<ext>`.
///
/// Only files whose names parse as this, for the app and environment at hand, are ever deleted.
public struct BackupName: Sendable, Equatable, Comparable {
  public var app: String
  public var environment: String
  public var version: Int
  /// Seconds since 1970, UTC, to the second.
  public var time: Int64
  public var compression: Compression

  public init(app: String, environment: String, version: Int, time: Int64, compression: Compression) {
    self.app = app
    self.environment = environment
    self.version = version
    self.time = time
    self.compression = compression
  }

  public var fileName: String {
    "\(app)-\(environment)-v\(version)-\(BackupName.stamp(time))\(compression.fileExtension)"
  }

  /// Parses `fileName` as a backup of `app`/`environment`; nil for any other name.
  public init?(fileName: String, app: String, environment: String) {
    let prefix = "\(app)-\(environment)-v"
    guard fileName.hasPrefix(prefix) else { return nil }
    var rest = Substring(fileName.dropFirst(prefix.count))
    guard let dash = rest.firstIndex(of: "-"), let version = Int(rest[..<dash]), version > 0,
      String(version) == rest[..<dash]
    else { return nil }
    rest = rest[rest.index(after: dash)...]
    guard rest.count > 16, let time = BackupName.parseStamp(String(rest.prefix(16))) else { return nil }
    let ending = String(rest.dropFirst(16))
    guard let compression = Compression.allCases.first(where: { $0.fileExtension == ending }) else { return nil }
    self.init(app: app, environment: environment, version: version, time: time, compression: compression)
  }

  public static func < (a: BackupName, b: BackupName) -> Bool {
    (a.time, a.version) < (b.time, b.version)
  }

  static func stamp(_ time: Int64) -> String {
    let iso = Timestamp.iso8601(Date(timeIntervalSince1970: TimeInterval(time)))  // 2026-11-20T10:00:00Z
    return iso.replacingOccurrences(of: "-", with: "").replacingOccurrences(of: ":", with: "")
  }

  static func parseStamp(_ text: String) -> Int64? {
    let bytes = Array(text.utf8)
    guard bytes.count == 16, bytes[8] == UInt8(ascii: "T"), bytes[15] == UInt8(ascii: "Z"),
      bytes[0..<8].allSatisfy({ (0x30...0x39).contains($0) }),
      bytes[9..<15].allSatisfy({ (0x30...0x39).contains($0) })
    else { return nil }
    let s = { (from: Int, count: Int) in String(decoding: bytes[from..<from + count], as: UTF8.self) }
    let iso = "\(s(0, 4))-\(s(4, 2))-\(s(6, 2))T\(s(9, 2)):\(s(11, 2)):\(s(13, 2))Z"
    guard let date = Timestamp.parse(iso), stamp(Int64(date.timeIntervalSince1970)) == text else { return nil }
    return Int64(date.timeIntervalSince1970)
  }
}
