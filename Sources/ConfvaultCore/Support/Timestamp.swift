import Foundation

/// Confvault's one way to write and read times: ISO 8601 in UTC to the second (`2026-11-20T10:00:00Z`).
public enum Timestamp {
  public static func iso8601(_ date: Date) -> String {
    let seconds = Int64(date.timeIntervalSince1970.rounded(.down))
    var time = time_t(seconds)
    var parts = tm()
    gmtime_r(&time, &parts)
    return String(
      format: "%04d-%02d-%02dT%02d:%02d:%02dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
      Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
  }

  /// Parses `yyyy-MM-ddTHH:mm:ssZ` (fractional seconds are accepted and dropped).
  public static func parse(_ text: String) -> Date? {
    let formatter = ISO8601DateFormatter()
    formatter.timeZone = TimeZone(identifier: "UTC")
    if let date = formatter.date(from: text) { return date }
    formatter.formatOptions.insert(.withFractionalSeconds)
    return formatter.date(from: text).map { Date(timeIntervalSince1970: $0.timeIntervalSince1970.rounded(.down)) }
  }

  /// Now, truncated to the second, as every stored time is.
  public static func now() -> Date {
    Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
  }
}
