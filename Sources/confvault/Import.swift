import ArgumentParser
import ConfvaultCore

struct Import: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Roll an environment back to an archive: checked whole, then pushed as a new version.",
    discussion: """
      Nothing in the store changes unless every entry of the archive passes every check. The head it
      replaces is pinned as a backup first. --dry-run checks and prints the changes, and writes nothing.
      Example: confvault import production-backup.tar.gz --app inventory --env staging
      """
  )

  @Argument(help: "The archive, or - for standard input.") var archive: String
  @OptionGroup var app: AppOption
  @Option(name: .customLong("env"), help: "The environment to roll back.") var environment: String
  @Option(name: .shortAndLong, help: "The comment (default: what was imported).") var message: String?
  @Flag(help: "Check and show the changes; write nothing.") var dryRun = false
  @Flag(help: "Accept an archive whose manifest names another app.") var allowOtherApp = false
  @OptionGroup var reading: ArchiveReadingOptions
  @OptionGroup var storeOptions: StoreOptions
  @OptionGroup var output: OutputOptions

  func run() async throws {
    let vault = try storeOptions.service()
    let result = try await vault.importArchive(
      ArchiveSource(argument: archive), app: app.app, environment: environment, comment: message,
      author: storeOptions.who, reader: reading.reader, allowOtherApp: allowOtherApp, dryRun: dryRun,
      expectedHead: nil, logger: storeOptions.logger)
    output.say(
      "archive OK: \(result.fileCount) files, \(ByteCount.format(result.totalSize)), tree \(result.treeDigest)"
    )
    switch result.outcome {
    case .imported(let change):
      Report.change(change, verb: "imported as", output: output)
    case .dryRun(let changes, let head):
      if let head, head.treeDigest == result.treeDigest {
        output.say("dry run: unchanged, head is v\(head.number); nothing would be written")
      } else {
        output.say("dry run: importing would make a new version with these changes (nothing was written):")
        for line in ChangePrinter.summary(changes) { output.say(line) }
      }
    }
  }
}
