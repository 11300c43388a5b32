import ArgumentParser
import ConfvaultCore

struct Import: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "import",
    abstract: "Roll an environment back to an archive: checked whole, then pushed as a new version.",
    discussion: """
      Nothing in the store changes unless every entry of the archive passes every check. The head it replaces is pinned as a backup first. --dry-run checks and prints the changes, and writes nothing.
      Example:
        confvault import production-backup.tar.gz --app inventory --env staging
      """
  )

  @Argument(help: "The archive, or - for standard input.") var archive: String
  @OptionGroup var app: AppOption
  @Option(name: .customLong("env"), help: "The environment to roll back.") var environment: String
  @Option(name: .shortAndLong, help: "The comment (default: what was imported).") var message: String?
  @Flag(help: "Check and show the changes; write nothing.") var dryRun = false
  @Flag(help: "Accept an archive whose manifest names another app.") var allowOtherApp = false
  @OptionGroup var reading: ArchiveReadingOptions
  @OptionGroup var confirmation: ConfirmationOptions
  @OptionGroup var list: ChangeListOptions
  @Flag(help: "Print JSON for machines.") var json = false
  @OptionGroup var storeOptions: StoreOptions
  @OptionGroup var output: OutputOptions

  /// What `import --json` prints: the archive as read, and the change made (or, in a dry run, previewed).
  struct ImportJSON: Encodable {
    struct ArchiveSummary: Encodable {
      var fileCount: Int
      var totalSize: Int64
      var treeDigest: TreeDigest
      var archiveSHA256: SHA256Hex
    }
    var archive: ArchiveSummary
    var dryRun: Bool
    @ExplicitNull var change: Report.ChangeJSON?
    @ExplicitNull var changes: [FileChange]?
  }

  func run() async throws {
    let service = try storeOptions.service()
    let changeGuard = storeOptions.changeGuard(service, confirmation)
    let action = "importing \(archive)"
    let approve: Approval = { @Sendable preview in try await changeGuard.approve(preview, action: action) }
    let approval = dryRun || confirmation.yes ? nil : approve
    let result = try await ProgressDisplay.run("importing", quiet: output.quiet || json) {
      try await service.importArchive(
        ArchiveSource(argument: archive), app: app.app, environment: environment, comment: message,
        author: storeOptions.who, reader: reading.reader, allowOtherApp: allowOtherApp, dryRun: dryRun,
        expectedHead: nil, approval: approval, logger: storeOptions.logger)
    }
    if json {
      let summary = ImportJSON.ArchiveSummary(
        fileCount: result.fileCount, totalSize: result.totalSize, treeDigest: result.treeDigest,
        archiveSHA256: result.archiveSHA256)
      switch result.outcome {
      case .imported(let change):
        return try JSONOutput.print(ImportJSON(archive: summary, dryRun: false, change: Report.ChangeJSON(change)))
      case .dryRun(let changes, _):
        return try JSONOutput.print(ImportJSON(archive: summary, dryRun: true, changes: changes))
      }
    }
    output.say(
      "archive OK: \(result.fileCount) files, \(ByteCount.format(result.totalSize)), tree \(result.treeDigest)"
    )
    switch result.outcome {
    case .imported(let change):
      Report.change(change, verb: "imported as", output: output, all: list.all)
    case .dryRun(let changes, let head):
      if let head, head.treeDigest == result.treeDigest {
        output.say("dry run: unchanged, head is v\(head.number); nothing would be written")
      } else {
        output.say("dry run: importing would make a new version with these changes (nothing was written):")
        for line in ChangePrinter.summary(changes, listing: list.all ? nil : Report.listed) { output.say(line) }
      }
    }
  }
}
