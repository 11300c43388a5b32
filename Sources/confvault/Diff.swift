import ArgumentParser
import ConfvaultCore

struct Diff: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "diff",
    abstract: "View changes: a version against its parent or another version, or two environments' heads.",
    discussion: """
      For JSON and YAML files, each changed key path (docs/diff.md), and a text diff when only comments or formatting changed; for other text, a unified diff; for binary files, the sizes. `N M` and `--env A --env B` show what changes from the first to the second.
      Examples:
        confvault diff --app inventory 12
        confvault diff --app inventory 9 12 --stat
        confvault diff --app inventory --env production --env staging   (what a sync of staging into production would change)
        confvault diff --app inventory 12 --exit-code --stat   (exit 1 when version 12 changed anything)
      """
  )

  @OptionGroup var app: AppOption
  @Argument(
    help:
      "The version, and optionally the one to compare it with (N against M): 12, v12, or an environment's name for its head."
  )
  var versions: [VersionReference] = []
  @Option(
    name: .customLong("env"),
    help: "Two environments whose heads to compare, the first as it is, the second as it would become (repeat twice).")
  var environments: [String] = []
  @Flag(help: "Only the list of changed files and a summary.") var stat = false
  @Flag(help: "Unified text diffs for every text file, JSON and YAML included, instead of key paths.") var text = false
  @Flag(help: "Exit with 1 when there are differences and 0 when there are none, as `git diff --exit-code`.")
  var exitCode = false
  @Flag(help: "List every changed file and every line; without it, long lists are shortened to a summary.")
  var all = false
  @Flag(help: "Print JSON for machines.") var json = false
  @OptionGroup var storeOptions: StoreOptions

  /// The most files listed, and detail lines printed per file, without `--all`.
  static let listedFiles = 50
  static let linesPerFile = 200
  /// The longest diff line printed whole; JSON carries every line whole.
  static let shownLineLength = 2_000

  func validate() throws {
    switch (versions.count, environments.count) {
    case (1, 0), (2, 0), (0, 2): break
    default: throw ValidationError("give a version N, two versions N M, or two environments --env A --env B")
    }
    if stat && text { throw ValidationError("--stat lists files only; --text shows their lines: choose one") }
  }

  struct Report: Encodable {
    var from: Int?
    var to: Int
    var files: [FileDiff]
  }

  func run() async throws {
    let service = try storeOptions.readingService()
    var numbers: [Int] = []
    for version in versions {
      numbers.append(try await version.number(app: app.app, service: service, logger: storeOptions.logger))
    }
    let selection: Vault.DiffSelection =
      environments.count == 2
      ? .environments(from: environments[0], to: environments[1])
      : numbers.count == 2 ? .versions(from: numbers[0], to: numbers[1]) : .version(numbers[0])
    let diff = try await service.diff(
      app: app.app, selection, details: !stat, asText: text, logger: storeOptions.logger)
    let (from, to, changes) = (diff.from, diff.to, diff.changes)
    if json {
      let files =
        stat
        ? changes.map { FileDiff(change: $0, detail: .sizes(old: $0.old?.size, new: $0.new?.size)) } : diff.files ?? []
      try JSONOutput.print(Report(from: from, to: to, files: files))
    } else {
      print(
        "diff \(app.app) \(from.map { "v\($0)" } ?? "(empty)") -> v\(to)"
          + (environments.count == 2 ? " (\(environments[0]) -> \(environments[1]))" : ""))
      if stat {
        ChangePrinter.summary(changes, listing: all ? nil : Self.listedFiles).forEach { print($0) }
      } else {
        let files = diff.files ?? []
        for file in all ? files : Array(files.prefix(Self.listedFiles)) {
          print(Self.render(file, all: all), terminator: "")
        }
        if files.count > Self.listedFiles && !all {
          print("… and \(files.count - Self.listedFiles) more files (--all lists every one)")
        }
        print(ChangePrinter.summary(changes, listing: 0).last!.trimmingCharacters(in: .whitespaces))
      }
    }
    if exitCode && !changes.isEmpty { throw ExitCode(1) }
  }

  /// A file's change as the terminal shows it: a header line, notes, then key paths or diff lines,
  /// each line shortened past `shownLineLength`, at most `linesPerFile` of them unless `all`.
  static func render(_ diff: FileDiff, all: Bool = false) -> String {
    let change = diff.change
    var text = "\(ChangePrinter.marker(change.kind)) \(safe(change.path))"
    switch change.kind {
    case .added: return text + "  (added, \(ByteCount.format(change.new?.size ?? 0)))\n"
    case .removed: return text + "  (removed, was \(ByteCount.format(change.old?.size ?? 0)))\n"
    case .modeChanged: return text + "  (mode \(change.old!.mode.rawValue) -> \(change.new!.mode.rawValue))\n"
    case .modified:
      if diff.modeChanged { text += "  (mode \(change.old!.mode.rawValue) -> \(change.new!.mode.rawValue))" }
      text += "\n"
    }
    var lines = diff.notes.map { "    note: \(safe($0))" }
    let shown = { (line: String) in safe(TreeValue.shorten(line, limit: shownLineLength)) }
    switch diff.detail {
    case .keys(let keys):
      for key in keys {
        lines.append("\(safe(change.path))  \(safe(key.description))")
        lines += (key.text ?? []).map { "    " + shown($0) }
      }
    case .text(let hunks):
      lines += hunks.map { "    " + shown($0) }
    case .sizes(let old, let new):
      lines.append("    binary or large: \(ByteCount.format(old ?? 0)) -> \(ByteCount.format(new ?? 0))")
    case .tooLarge(let old, let new):
      lines.append(
        "    too large to show (\(ByteCount.format(old ?? 0)) -> \(ByteCount.format(new ?? 0))); "
          + "checkout both versions to compare them")
    }
    if !all && lines.count > linesPerFile {
      let left = lines.count - linesPerFile
      lines = Array(lines.prefix(linesPerFile)) + ["    … \(left) more lines (--all shows them)"]
    }
    return text + lines.map { $0 + "\n" }.joined()
  }
}
