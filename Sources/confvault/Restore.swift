import ArgumentParser
import ConfvaultCore

struct Restore: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "restore",
    abstract: "Revert an environment to a version: a new version with that version's files.",
    discussion: """
      History is never rewritten: the restore is a new version (origin restore), and the head it replaces is pinned as a backup.
      Example:
        confvault restore --app inventory 9 --env production
      """
  )

  @OptionGroup var app: AppOption
  @Argument(help: "The version to restore: 12, v12, or an environment's name for its head.")
  var version: VersionReference
  @Option(name: .customLong("env"), help: "The environment to restore it into.") var environment: String
  @Option(name: .shortAndLong, help: "The comment.") var message: String?
  @Flag(help: "Show what would change, at key-path level; write nothing.") var dryRun = false
  @OptionGroup var confirmation: ConfirmationOptions
  @OptionGroup var list: ChangeListOptions
  @Flag(help: "Print JSON for machines.") var json = false
  @OptionGroup var storeOptions: StoreOptions
  @OptionGroup var output: OutputOptions

  func run() async throws {
    let service = try storeOptions.service()
    let number = try await version.number(app: app.app, service: service, logger: storeOptions.logger)
    // With --yes nothing is asked, so no preview is made.
    var expectedHead: Vault.ExpectedHead?
    if dryRun || !confirmation.yes {
      let preview = try await service.previewRestore(
        app: app.app, number: number, environment: environment, logger: storeOptions.logger)
      if dryRun {
        if json { return try JSONOutput.print(Report.PreviewJSON(preview: preview)) }
        return Report.preview(preview, action: "restoring v\(number)", output: output, all: list.all)
      }
      let confirmed = try await storeOptions.changeGuard(service, confirmation).approve(
        preview, action: "restoring v\(number)")
      if confirmed { expectedHead = preview.expectedHead }
    }
    let change = try await service.restore(
      app: app.app, number: number, environment: environment, comment: message, author: storeOptions.who,
      expectedHead: expectedHead, logger: storeOptions.logger)
    if json { return try JSONOutput.print(Report.ChangeJSON(change)) }
    Report.change(change, verb: "restored v\(number) as", output: output, all: list.all)
  }
}
