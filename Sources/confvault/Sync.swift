import ArgumentParser
import ConfvaultCore

struct Sync: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "sync",
    abstract: "Put a version into production: its head, its synced-at, and pinned as a backup.",
    discussion: """
      The head it replaces is pinned first, so the state just before is always kept. --to names another environment than production.
      Examples:
        confvault sync --app inventory 12
        confvault sync --app inventory v12 --to staging
      """
  )

  @OptionGroup var app: AppOption
  @Argument(help: "The version to sync: 12, v12, or an environment's name for its head.")
  var version: VersionReference
  @Option(help: "The environment to sync to (default: the production environment).") var to: String?
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
    var (target, expectedHead): (String?, Vault.ExpectedHead?) = (to, nil)
    if dryRun || !confirmation.yes {
      let preview = try await service.previewSync(
        app: app.app, number: number, environment: to, logger: storeOptions.logger)
      if dryRun {
        if json { return try JSONOutput.print(Report.PreviewJSON(preview: preview)) }
        return Report.preview(preview, action: "syncing v\(number)", output: output, all: list.all)
      }
      let confirmed = try await storeOptions.changeGuard(service, confirmation).approve(
        preview, action: "syncing v\(number)")
      target = preview.environment
      if confirmed { expectedHead = preview.expectedHead }
    }
    let result = try await service.sync(
      app: app.app, number: number, environment: target, author: storeOptions.who, expectedHead: expectedHead,
      logger: storeOptions.logger)
    if json { return try JSONOutput.print(result) }
    output.say(
      "synced v\(number) to \(app.app)/\(result.environment)"
        + (result.replaced.map { "; previous head v\($0) pinned as a backup" } ?? "")
        + (result.wasHead ? "; it was the head already" : ""))
  }
}
