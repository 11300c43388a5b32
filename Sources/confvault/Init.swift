import ArgumentParser
import ConfvaultCore

struct Init: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "init",
    abstract: "Create an app (and the store, the first time) with its environments.",
    discussion: """
      Without --env, the app gets development, staging and production, production being production.
      Example:
        confvault init --app inventory --env dev --env prod --production prod
      """
  )

  @OptionGroup var app: AppOption
  @Option(name: .customLong("env"), help: "An environment to create (repeatable).")
  var environments: [String] = []
  @Option(help: "Which of the environments is production.")
  var production: String?
  @Flag(help: "Make an app without a production environment (`env set-production` names one later).")
  var noProduction = false
  @OptionGroup var storeOptions: StoreOptions
  @OptionGroup var output: OutputOptions

  func validate() throws {
    guard !app.app.isEmpty else { throw ValidationError("name the app to create with --app (or CONFVAULT_APP)") }
    for environment in environments { try validateName(environment, as: "environment") }
    if production != nil && noProduction {
      throw ValidationError("--production and --no-production contradict each other; give one")
    }
    // An app without production cannot be synced: say so, rather than make one silently.
    if !environments.isEmpty, production == nil, !noProduction {
      throw ValidationError(
        "which of \(environments.joined(separator: ", ")) is production? Name it with --production NAME, or pass --no-production for an app without one"
      )
    }
    if let production, !environments.isEmpty, !environments.contains(production) {
      throw ValidationError("--production \(production) is not among the --env names")
    }
  }

  func run() async throws {
    let names = environments.isEmpty ? ["development", "staging", "production"] : environments
    let productionName = production ?? (environments.isEmpty ? "production" : nil)
    try storeOptions.requireLocal("init")
    let vault = try storeOptions.vault(create: true)
    try await vault.createApp(
      app.app, environments: names, production: productionName, author: storeOptions.who, logger: storeOptions.logger)
    output.say(
      "created app '\(app.app)' with environments \(names.joined(separator: ", "))"
        + (productionName.map { "; production: \($0)" } ?? "") + " in \(storeOptions.folder)")
  }
}
