import ConfvaultCore
import Foundation
import Testing

/// Retention over a synthetic history: one backup a day at 02:30 UTC from 2024-11-22 to 2026-11-21
/// (Saturday), two years. Each expectation was worked out by hand from a calendar.
@Suite struct RetentionTests {
  static let history: [BackupName] = {
    let first = Int64(Timestamp.parse("2024-11-22T02:30:00Z")!.timeIntervalSince1970)
    return (0..<730).map { day in
      BackupName(
        app: "inventory", environment: "production", version: day + 1, time: first + Int64(day) * 86_400,
        compression: .zstd)
    }
  }()

  /// The days (yyyy-MM-dd) of the backups a policy keeps, newest first.
  func keptDays(_ policy: RetentionPolicy) -> [String] {
    policy.kept(Self.history).map { Self.history[$0] }.sorted(by: >).map {
      String(Timestamp.iso8601(Date(timeIntervalSince1970: TimeInterval($0.time))).prefix(10))
    }
  }

  @Test("the history spans two years and ends on Saturday 2026-11-21")
  func history() {
    #expect(Self.history.count == 730)
    #expect(Self.history.last!.fileName == "20261121T023000Z-inventory-production-v730.tar.zst")
  }

  @Test("no rule keeps everything")
  func noRule() { #expect(RetentionPolicy().kept(Self.history).count == 730) }

  @Test("keep-last keeps the newest N")
  func last() { #expect(keptDays(RetentionPolicy(last: 3)) == ["2026-11-21", "2026-11-20", "2026-11-19"]) }

  @Test("keep-daily keeps one a day for the newest N days")
  func daily() {
    #expect(keptDays(RetentionPolicy(daily: 7)) == (15...21).reversed().map { "2026-11-\($0)" })
  }

  @Test("keep-weekly keeps the newest of each ISO week (Monday to Sunday)")
  func weekly() {
    #expect(keptDays(RetentionPolicy(weekly: 4)) == ["2026-11-21", "2026-11-15", "2026-11-08", "2026-11-01"])
  }

  @Test("keep-monthly keeps the newest of each of the newest N months")
  func monthly() {
    #expect(
      keptDays(RetentionPolicy(monthly: 12)) == [
        "2026-11-21", "2026-10-31", "2026-09-30", "2026-08-31", "2026-07-31", "2026-06-30", "2026-05-31",
        "2026-04-30", "2026-03-31", "2026-02-28", "2026-01-31", "2025-12-31",
      ])
  }

  @Test("keep-yearly keeps the newest of each year, the oldest year included")
  func yearly() {
    #expect(keptDays(RetentionPolicy(yearly: 5)) == ["2026-11-21", "2025-12-31", "2024-12-31"])
  }

  @Test("keep-hourly counts hours that have a backup")
  func hourly() { #expect(keptDays(RetentionPolicy(hourly: 2)) == ["2026-11-21", "2026-11-20"]) }

  @Test("keep-within keeps everything younger than the duration, counted from the newest")
  func within() {
    let days = keptDays(RetentionPolicy(within: RetentionPolicy.duration("10d")))
    #expect(days == (11...21).reversed().map { "2026-11-\($0)" })
  }

  @Test("rules add up: a backup is kept if any rule keeps it")
  func combined() {
    let days = keptDays(RetentionPolicy(daily: 7, weekly: 4, monthly: 12))
    // Daily: 11-15 to 11-21. Weekly adds 11-08 and 11-01 (11-21, 11-15 are daily). Monthly adds 11 month ends.
    #expect(days.count == 7 + 2 + 11)
    #expect(days.contains("2026-11-08") && days.contains("2025-12-31") && !days.contains("2025-11-30"))
  }

  @Test(
    "durations parse",
    arguments: [("30d", 2_592_000.0), ("12h", 43_200.0), ("2w", 1_209_600.0), ("1y2m", 36_720_000.0)])
  func durations(text: String, seconds: Double) { #expect(RetentionPolicy.duration(text) == seconds) }

  @Test("bad durations are refused", arguments: ["", "30", "d", "3x", "-1d"])
  func badDurations(text: String) { #expect(RetentionPolicy.duration(text) == nil) }

  @Test("only names confvault writes, in either layout, parse as backups of the environment")
  func names() {
    let current = BackupName(
      fileName: "20261120T023000Z-inventory-production-v12.tar.zst", app: "inventory", environment: "production")
    #expect(current?.version == 12 && current?.layout == .timeFirst && current?.compression == .zstd)
    #expect(current?.fileName == "20261120T023000Z-inventory-production-v12.tar.zst", "the name it was read from")
    let earlier = BackupName(
      fileName: "inventory-production-v12-20261120T023000Z.tar.gz", app: "inventory", environment: "production")
    #expect(earlier?.version == 12 && earlier?.layout == .versionFirst && earlier?.time == current?.time)
    #expect(earlier?.fileName == "inventory-production-v12-20261120T023000Z.tar.gz", "retention deletes by this name")
    for name in [
      "inventory-production-v12-20261120T023000Z.tar.zst.bak", "notes.txt", "inventory-production-latest.tar.zst",
      "inventory-production-v12-20261120T023000Z.zip", "inventory-staging-v12-20261120T023000Z.tar.zst",
      "inventory-production-v012-20261120T023000Z.tar.zst", "inventory-production-v12-20261340T023000Z.tar.zst",
      "20261120T023000Z-inventory-production-v12.tar.zst.bak", "20261120T023000Z-inventory-staging-v12.tar.zst",
      "20261120T023000Z-inventory-production-v012.tar.zst", "20261120T023000Z-inventory-production-v0.tar.zst",
      "20261340T023000Z-inventory-production-v12.tar.zst", "20261120T023000Z-inventory-production-v12.zip",
      "20261120T023000Z-inventory-production-v12-v3.tar.zst", "20261120T023000Z-inventory-production-latest.tar.zst",
      "20261120T023000-inventory-production-v12.tar.zst",
    ] {
      #expect(BackupName(fileName: name, app: "inventory", environment: "production") == nil, "\(name)")
    }
  }

  @Test("names written now sort by time as plain strings, v16 after v2; the earlier layout did not")
  func namesSortByTime() {
    let first = Int64(Timestamp.parse("2026-11-20T02:30:00Z")!.timeIntervalSince1970)
    let backups = [(2, first), (9, first + 86_400), (16, first + 2 * 86_400), (120, first + 3 * 86_400)].map {
      BackupName(app: "inventory", environment: "production", version: $0.0, time: $0.1, compression: .zstd)
    }
    #expect(backups.map(\.fileName).sorted() == backups.map(\.fileName), "\(backups.map(\.fileName).sorted())")
    let earlier = backups.map {
      var name = $0
      name.layout = .versionFirst
      return name.fileName
    }
    #expect(earlier.sorted() != earlier, "the reason for the new layout: `-v16-` sorts before `-v2-`")
  }

  @Test("retention counts both layouts in one folder together, by time")
  func mixedLayouts() {
    let mixed = Self.history.suffix(10).enumerated().map { index, name in
      var name = name
      if index % 2 == 0 { name.layout = .versionFirst }
      return name
    }
    let kept = RetentionPolicy(last: 3).kept(Array(mixed)).sorted()
    #expect(kept == [7, 8, 9], "the newest three by time, whatever their layout")
    #expect(mixed[8].layout == .versionFirst && mixed[9].layout == .timeFirst)
  }
}
