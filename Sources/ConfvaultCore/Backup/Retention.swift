import Foundation

/// Which backups to keep, restic-style: a backup is kept if any rule keeps it.
///
/// `last` keeps the newest N; `hourly`, `daily`, `weekly`, `monthly` and `yearly` keep the newest
/// backup of each of the newest N hours, days, ISO weeks, months and years that have one (in UTC);
/// `within` keeps every backup younger than the duration, counted back from the newest backup.
public struct RetentionPolicy: Sendable, Equatable {
  public var last = 0
  public var hourly = 0
  public var daily = 0
  public var weekly = 0
  public var monthly = 0
  public var yearly = 0
  public var within: TimeInterval?

  public init(
    last: Int = 0, hourly: Int = 0, daily: Int = 0, weekly: Int = 0, monthly: Int = 0, yearly: Int = 0,
    within: TimeInterval? = nil
  ) {
    self.last = last
    self.hourly = hourly
    self.daily = daily
    self.weekly = weekly
    self.monthly = monthly
    self.yearly = yearly
    self.within = within
  }

  /// With no rule, retention deletes nothing.
  public var isEmpty: Bool {
    last == 0 && hourly == 0 && daily == 0 && weekly == 0 && monthly == 0 && yearly == 0 && within == nil
  }

  /// The backups to keep among `backups` (any order); nothing is dropped when the policy is empty.
  public func kept(_ backups: [BackupName]) -> Set<Int> {
    let newestFirst = backups.indices.sorted { backups[$0] > backups[$1] }
    guard !isEmpty else { return Set(backups.indices) }
    var keep = Set(newestFirst.prefix(last))
    let calendar: Calendar = {
      var calendar = Calendar(identifier: .iso8601)
      calendar.timeZone = TimeZone(identifier: "UTC")!
      return calendar
    }()
    func bucketKeep(_ count: Int, _ bucket: (Date) -> String) {
      guard count > 0 else { return }
      var seen = Set<String>()
      for index in newestFirst {
        let key = bucket(Date(timeIntervalSince1970: TimeInterval(backups[index].time)))
        if seen.insert(key).inserted {
          keep.insert(index)
          if seen.count == count { return }
        }
      }
    }
    func parts(_ date: Date, _ components: Set<Calendar.Component>) -> String {
      let values = calendar.dateComponents(components, from: date)
      return [values.yearForWeekOfYear, values.weekOfYear, values.year, values.month, values.day, values.hour]
        .map { $0.map(String.init) ?? "-" }.joined(separator: ":")
    }
    bucketKeep(hourly) { parts($0, [.year, .month, .day, .hour]) }
    bucketKeep(daily) { parts($0, [.year, .month, .day]) }
    bucketKeep(weekly) { parts($0, [.yearForWeekOfYear, .weekOfYear]) }
    bucketKeep(monthly) { parts($0, [.year, .month]) }
    bucketKeep(yearly) { parts($0, [.year]) }
    if let within, let newest = newestFirst.first {
      let limit = backups[newest].time - Int64(within)
      for index in newestFirst where backups[index].time >= limit { keep.insert(index) }
    }
    return keep
  }

  /// Parses a duration such as `30d`, `12h`, `2w`, `1y2m` (y, m = 30 days, w, d, h).
  public static func duration(_ text: String) -> TimeInterval? {
    let units: [Character: TimeInterval] = ["y": 365 * 86400, "m": 30 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600]
    var total: TimeInterval = 0
    var number = ""
    for character in text {
      if character.isASCII && character.isNumber {
        number.append(character)
      } else if let unit = units[character], let value = Double(number) {
        total += value * unit
        number = ""
      } else {
        return nil
      }
    }
    return number.isEmpty && total > 0 ? total : nil
  }
}
