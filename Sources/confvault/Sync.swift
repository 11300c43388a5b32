import ArgumentParser
import ConfvaultCore

struct Sync: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Put a version into production: its head, its synced-at, and pinned as a backup.",
    discussion: """
      The head it replaces is pinned first, so the state just before is always kept.
      Example: confvault sync --app inventory 12      (or --to staging for another environment)
      """
  )

  @OptionGroup var app: AppOption
  @Argument(help: "The version to sync.") var number: Int
  @Option(help: "The environment to sync to (default: the production environment).") var to: String?
  @OptionGroup var storeOptions: StoreOptions
  @OptionGroup var output: OutputOptions

  func run() async throws {
    let result = try await storeOptions.service().sync(
      app: app.app, number: number, environment: to, author: storeOptions.who, expectedHead: nil,
      logger: storeOptions.logger)
    output.say(
      "synced v\(number) to \(app.app)/\(result.environment)"
        + (result.replaced.map { "; previous head v\($0) pinned as a backup" } ?? "")
        + (result.wasHead ? "; it was the head already" : ""))
  }
}
