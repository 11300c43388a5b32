import Foundation
import Testing

@testable import ConfvaultCore

/// The times manifests, JSON and backup names are written and read with.
@Suite struct TimestampTests {
  @Test("every second written is read back as itself, across leap days, centuries and the epoch")
  func roundTrip() {
    var random = SystemRandomNumberGenerator()
    // 1900 (no leap day), 2000 (one), 2100 (none), the epoch and its eve, and random seconds to 9999.
    let fixed: [Int64] = [-2_208_988_800, -2_203_977_600, 951_782_400, 951_868_800, 4_107_542_400, -1, 0, 1]
    let seconds = fixed + (0..<2_000).map { _ in Int64.random(in: -62_135_596_800...253_402_300_799, using: &random) }
    for second in seconds {
      let date = Date(timeIntervalSince1970: TimeInterval(second))
      let text = Timestamp.iso8601(date)
      #expect(Timestamp.parse(text) == date, "\(second) written as \(text)")
    }
    #expect(Timestamp.iso8601(Date(timeIntervalSince1970: 951_782_400)) == "2000-02-29T00:00:00Z")
  }

  @Test("a time is written as C's strftime writes it, from year 1000 to 9999, and zero-padded before")
  func writtenAsStrftime() {
    var random = SystemRandomNumberGenerator()
    // 1000-01-01 to 9999-12-31, the epoch and its eve, and three years written with leading zeros.
    let fixed: [Int64] = [-30_610_224_000, 253_402_300_799, -1, 0]
    let seconds = fixed + (0..<2_000).map { _ in Int64.random(in: -30_610_224_000...253_402_300_799, using: &random) }
    for second in seconds {
      var time = time_t(second)
      var parts = tm()
      gmtime_r(&time, &parts)
      var buffer = [CChar](repeating: 0, count: 32)
      let count = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
      let expected = String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
      #expect(Timestamp.iso8601(Date(timeIntervalSince1970: TimeInterval(second))) == expected, "\(second)")
    }
    #expect(Timestamp.iso8601(Date(timeIntervalSince1970: -62_135_596_800)) == "0001-01-01T00:00:00Z")
    #expect(Timestamp.iso8601(Date(timeIntervalSince1970: -59_042_995_201)) == "0098-12-31T23:59:59Z")
    #expect(Timestamp.iso8601(Date(timeIntervalSince1970: -31_536_000_000)) == "0970-08-31T00:00:00Z")
  }

  @Test("an offset is taken off, a fraction dropped, and lower-case t and z are RFC 3339's too")
  func offsetsAndFractions() {
    let utc = Timestamp.parse("2026-11-20T10:00:00Z")
    #expect(utc == Date(timeIntervalSince1970: 1_795_168_800))
    #expect(Timestamp.parse("2026-11-20T11:30:00+01:30") == utc)
    #expect(Timestamp.parse("2026-11-20T05:00:00-05:00") == utc)
    #expect(Timestamp.parse("2026-11-21T00:00:00+14:00") == utc)
    #expect(Timestamp.parse("2026-11-20t10:00:00z") == utc)
    #expect(Timestamp.parse("2026-11-20T10:00:00.999999Z") == utc)
    #expect(Timestamp.parse("2026-11-20T10:00:00.5+00:00") == utc)
  }

  @Test(
    "anything else is refused: a day the month lacks, an hour past 23, no zone, a space, other digits, trailing bytes",
    arguments: [
      "", "2026-11-20", "2026-11-20T10:00:00", "2026-11-20 10:00:00Z", "2026-11-20T10:00Z", "2026-11-20T10:00:00ZZ",
      "2026-11-20T10:00:00Z ", " 2026-11-20T10:00:00Z", "2026-11-20T10:00:00.Z", "2026-11-20T10:00:00+0100",
      "2026-11-20T10:00:00+01", "2026-11-20T10:00:00+24:00", "2026-11-20T10:00:00+01:60", "2026-13-01T00:00:00Z",
      "2026-00-01T00:00:00Z", "2026-11-00T00:00:00Z", "2026-11-31T00:00:00Z", "2026-02-29T00:00:00Z",
      "1900-02-29T00:00:00Z", "2026-11-20T24:00:00Z", "2026-11-20T10:60:00Z", "2026-11-20T10:00:60Z",
      "26-11-20T10:00:00Z", "+2026-11-20T10:00:00Z", "2026-1-20T10:00:00Z", "２０２６-11-20T10:00:00Z",
      "2026-11-20T10:00:00\u{0}Z", "2026/11/20T10:00:00Z",
    ])
  func refused(text: String) {
    #expect(Timestamp.parse(text) == nil)
  }

  @Test("a leap day of a leap year, and the last second of a year, are read")
  func edges() {
    #expect(Timestamp.parse("2024-02-29T12:00:00Z") == Date(timeIntervalSince1970: 1_709_208_000))
    #expect(Timestamp.parse("2000-02-29T00:00:00Z") == Date(timeIntervalSince1970: 951_782_400))
    #expect(Timestamp.parse("1999-12-31T23:59:59Z") == Date(timeIntervalSince1970: 946_684_799))
    #expect(Timestamp.parse("1969-12-31T23:59:59Z") == Date(timeIntervalSince1970: -1))
  }
}
