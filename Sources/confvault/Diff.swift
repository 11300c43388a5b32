import ArgumentParser
import ConfvaultCore

struct Diff: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "View changes: a version against its parent or another version, or two environments' heads.",
    discussion: """
      For JSON and YAML files, each changed key path; for other text, a unified diff; for binary
      files, the sizes.
      Examples: confvault diff --app inventory 12
                confvault diff --app inventory 9 12 --stat
                confvault diff --app inventory --env production --env staging   (what a sync would change)
      """
  )

  @OptionGroup var app: AppOption
  @Argument(
    help:
      "The version, and optionally the one to compare it with (N against M): 12, v12, or an environment's name for its head."
  )
  var versions: [VersionReference] = []
  @Option(name: .customLong("env"), help: "Two environments whose heads to compare (repeat twice).")
  var environments: [String] = []
  @Flag(help: "Only the list of changed files and a summary.") var stat = false
  @Flag(help: "Print JSON for machines.") var json = false
  @OptionGroup var storeOptions: StoreOptions

  func validate() throws {
    switch (versions.count, environments.count) {
    case (1, 0), (2, 0), (0, 2): return
    default: throw ValidationError("give a version N, two versions N M, or two environments --env A --env B")
    }
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
    let diff = try await service.diff(app: app.app, selection, details: !stat, logger: storeOptions.logger)
    let (from, to, changes) = (diff.from, diff.to, diff.changes)
    let title =
      "diff \(app.app) \(from.map { "v\($0)" } ?? "(empty)") -> v\(to)"
      + (environments.count == 2 ? " (\(environments[0]) -> \(environments[1]))" : "")
    if stat {
      if json {
        return try JSONOutput.print(
          Report(
            from: from, to: to,
            files: changes.map { FileDiff(change: $0, detail: .sizes(old: $0.old?.size, new: $0.new?.size)) }))
      }
      print(title)
      ChangePrinter.summary(changes).forEach { print($0) }
      return
    }
    let diffs = diff.files ?? []
    if json { return try JSONOutput.print(Report(from: from, to: to, files: diffs)) }
    print(title)
    for diff in diffs { print(Self.render(diff), terminator: "") }
    print(ChangePrinter.summary(changes).last!.trimmingCharacters(in: .whitespaces))
  }

  static func render(_ diff: FileDiff) -> String {
    let change = diff.change
    var text = "\(ChangePrinter.marker(change.kind)) \(safe(change.path))"
    switch change.kind {
    case .added: text += "  (added, \(ByteCount.format(change.new?.size ?? 0)))\n"
    case .removed: text += "  (removed, was \(ByteCount.format(change.old?.size ?? 0)))\n"
    case .modeChanged: text += "  (mode \(change.old!.mode.rawValue) -> \(change.new!.mode.rawValue))\n"
    case .modified:
      text += "\n"
      switch diff.detail {
      case .keys(let keys):
        for key in keys { text += "\(safe(change.path))  \(safe(key.description))\n" }
      case .text(let lines):
        for line in lines { text += "    \(safe(line))\n" }
      case .sizes(let old, let new):
        text += "    binary or large: \(ByteCount.format(old ?? 0)) -> \(ByteCount.format(new ?? 0))\n"
      }
    }
    return text
  }
}
