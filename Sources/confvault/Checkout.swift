import ArgumentParser
import ConfvaultCore

struct Checkout: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "checkout",
    abstract: "Write an environment's current configuration into a new folder, atomically.",
    discussion: """
      The folder records what it came from in .confvault/checkout.json, which is never pushed: status and push then tell when the environment's head has moved past it, and push refuses such a folder unless --force.
      Example:
        confvault checkout --app inventory --env production --to /tmp/production
      """
  )

  @OptionGroup var app: AppOption
  @Option(name: .customLong("env"), help: "The environment.") var environment: String
  @Option(help: "The folder to create.") var to: String
  @OptionGroup var storeOptions: StoreOptions
  @OptionGroup var output: OutputOptions

  func run() async throws {
    try storeOptions.requireLocal("checkout")
    let version = try await storeOptions.readOnlyVault().checkout(
      app: app.app, environment: environment, to: to, storeName: storeOptions.checkoutStoreName,
      logger: storeOptions.logger)
    output.say("checked out v\(version.number) of \(app.app)/\(environment) into \(to) (\(version.fileCount) files)")
  }
}
