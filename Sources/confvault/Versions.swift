import ArgumentParser
import ConfvaultCore
import Foundation

struct Versions: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "versions",
    abstract: "List versions, newest first: number, environment, author, dates, comment, production.",
    discussion: """
      On a terminal numbers are coloured: green = the current production version, yellow = synced to production once but not now, blue = never synced.
      Example:
        confvault versions --app inventory --env production --limit 20
      """
  )

  @OptionGroup var app: AppOption
  @Option(name: .customLong("env"), help: "Only versions made in this environment.") var environment: String?
  @Option(help: "How many versions to list.") var limit = 50
  @Option(help: "List versions numbered below this one (the next page).") var before: Int?
  @Flag(help: "Print JSON for machines.") var json = false
  @OptionGroup var storeOptions: StoreOptions

  func validate() throws {
    guard limit > 0 else { throw ValidationError("--limit must be positive") }
  }

  /// One version as `versions --json` prints it.
  struct Row: Encodable {
    var number: Int
    var environment: String
    var author: String
    var createdAt: Date
    @ExplicitNull var syncedAt: Date?
    var comment: String
    var origin: Origin
    var backup: Bool
    var status: SyncStatus
    @ExplicitNull var parent: Int?
    @ExplicitNull var restoredFrom: Int?
    var treeDigest: TreeDigest
    var fileCount: Int
    var totalSize: Int64

    init(_ version: Version, status: SyncStatus) {
      number = version.number
      environment = version.environment
      author = version.author
      createdAt = version.createdAt
      syncedAt = version.syncedAt
      comment = version.comment
      origin = version.origin
      backup = version.backup
      self.status = status
      parent = version.parent
      restoredFrom = version.restoredFrom
      treeDigest = version.treeDigest
      fileCount = version.fileCount
      totalSize = version.totalSize
    }
  }

  func run() async throws {
    let page = try await storeOptions.readingService().versionsPage(
      app: app.app, environment: environment, before: before, limit: limit, logger: storeOptions.logger)
    let rows = page.rows.map { Row($0.version, status: $0.status) }
    if json { return try JSONOutput.print(rows) }
    if rows.isEmpty {
      print("no versions" + (environment.map { " in '\($0)'" } ?? "") + " of app '\(app.app)' yet")
      return
    }
    let table =
      [["Number", "Env", "Author", "Date", "Sync date", "Comments", "Prod"]]
      + rows.map { row in
        [
          "v\(row.number)", safe(row.environment), safe(row.author), Timestamp.iso8601(row.createdAt),
          row.syncedAt.map(Timestamp.iso8601) ?? "-", safe(row.comment) + (row.backup ? " [backup]" : ""),
          row.status == .currentProduction ? "yes" : "",
        ]
      }
    let widths = (0..<7).map { column in table.map { $0[column].count }.max() ?? 0 }
    let colours = Terminal.colours
    for (index, cells) in table.enumerated() {
      var line = ""
      for (column, cell) in cells.enumerated() {
        let padded = cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
        if column == 0 && index > 0 && colours {
          line += Colour.status(rows[index - 1].status).wrap(padded)
        } else {
          line += padded
        }
        line += column == 6 ? "" : "  "
      }
      print(line.trimmingCharacters(in: .whitespaces))
    }
    if let next = page.nextBefore {
      print("(older: --before \(next))")
    }
  }
}

/// ANSI colours of the versions list.
enum Colour: String {
  case green = "32"
  case yellow = "33"
  case blue = "34"

  static func status(_ status: SyncStatus) -> Colour {
    switch status {
    case .currentProduction: return .green
    case .synced: return .yellow
    case .notSynced: return .blue
    }
  }

  func wrap(_ text: String) -> String { "\u{1B}[\(rawValue)m\(text)\u{1B}[0m" }
}
