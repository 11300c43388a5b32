import Foundation

/// Confvault's one way to write and read times: ISO 8601 in UTC to the second (`2026-11-20T10:00:00Z`).
public enum Timestamp {
  public static func iso8601(_ date: Date) -> String {
    let seconds = Int64(date.timeIntervalSince1970.rounded(.down))
    var time = time_t(seconds)
    var parts = tm()
    gmtime_r(&time, &parts)
    let year = Int(parts.tm_year) + 1900
    guard (0...9999).contains(year) else {
      return String(
        format: "%04d-%02d-%02dT%02d:%02d:%02dZ", year, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
        Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    }
    // Digit by digit: `String(format:)` went through Foundation's formatting, and was a tenth of a
    // server's `GET versions` (50 versions, three times each).
    return String(unsafeUninitializedCapacity: 20) { text in
      func put(_ value: Int, digits: Int, at offset: Int, then separator: UInt8) {
        var rest = value
        for index in (offset..<offset + digits).reversed() {
          text[index] = UInt8(ascii: "0") + UInt8(rest % 10)
          rest /= 10
        }
        text[offset + digits] = separator
      }
      put(year, digits: 4, at: 0, then: UInt8(ascii: "-"))
      put(Int(parts.tm_mon) + 1, digits: 2, at: 5, then: UInt8(ascii: "-"))
      put(Int(parts.tm_mday), digits: 2, at: 8, then: UInt8(ascii: "T"))
      put(Int(parts.tm_hour), digits: 2, at: 11, then: UInt8(ascii: ":"))
      put(Int(parts.tm_min), digits: 2, at: 14, then: UInt8(ascii: ":"))
      put(Int(parts.tm_sec), digits: 2, at: 17, then: UInt8(ascii: "Z"))
      return 20
    }
  }

  /// Parses an RFC 3339 time: `yyyy-MM-ddTHH:mm:ssZ`, or with an offset (`+01:00`), which is
  /// taken off; fractional seconds are accepted and dropped. Nil for anything else, a day the month
  /// does not have included.
  ///
  /// Read by hand: Foundation's `ISO8601DateFormatter` loads ICU's calendars and locale data, which
  /// was 5 MiB and 6 ms of a `verify` of an exported 1,000-file archive (25 ms now).
  public static func parse(_ text: String) -> Date? {
    var reader = TimeReader(bytes: Array(text.utf8))
    guard let year = reader.number(digits: 4), reader.skip("-"), let month = reader.number(digits: 2),
      reader.skip("-"), let day = reader.number(digits: 2), reader.skip("T") || reader.skip("t"),
      let hour = reader.number(digits: 2), reader.skip(":"), let minute = reader.number(digits: 2),
      reader.skip(":"), let second = reader.number(digits: 2)
    else { return nil }
    if reader.skip(".") {
      guard reader.number(digits: 1) != nil else { return nil }
      while reader.number(digits: 1) != nil {}
    }
    var offset = 0
    if !(reader.skip("Z") || reader.skip("z")) {
      let sign = reader.skip("+") ? 1 : reader.skip("-") ? -1 : 0
      guard sign != 0, let hours = reader.number(digits: 2), hours < 24, reader.skip(":"),
        let minutes = reader.number(digits: 2), minutes < 60
      else { return nil }
      offset = sign * (hours * 3600 + minutes * 60)
    }
    guard reader.atEnd, (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day),
      hour < 24, minute < 60, second < 60
    else { return nil }
    let seconds = daysSince1970(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + second
    return Date(timeIntervalSince1970: TimeInterval(seconds - offset))
  }

  /// The bytes of a time being read, front to back.
  private struct TimeReader {
    let bytes: [UInt8]
    var at = 0

    var atEnd: Bool { at == bytes.count }

    /// Reads `character` if it is next.
    mutating func skip(_ character: Unicode.Scalar) -> Bool {
      guard at < bytes.count, bytes[at] == UInt8(ascii: character) else { return false }
      at += 1
      return true
    }

    /// Reads exactly `digits` ASCII digits as a number.
    mutating func number(digits: Int) -> Int? {
      guard bytes.count - at >= digits else { return nil }
      var value = 0
      for byte in bytes[at..<at + digits] {
        guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
        value = value * 10 + Int(byte - UInt8(ascii: "0"))
      }
      at += digits
      return value
    }
  }

  private static func daysIn(month: Int, year: Int) -> Int {
    switch month {
    case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
    case 4, 6, 9, 11: return 30
    default: return 31
    }
  }

  /// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard Hinnant's
  /// `days_from_civil`).
  private static func daysSince1970(year: Int, month: Int, day: Int) -> Int {
    let year = month <= 2 ? year - 1 : year
    let era = (year >= 0 ? year : year - 399) / 400
    let yearOfEra = year - era * 400
    let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
    return era * 146_097 + dayOfEra - 719_468
  }

  /// Now, truncated to the second, as every stored time is.
  public static func now() -> Date {
    Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
  }
}
