import ArgumentParser
import ConfvaultCore

struct Env: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "env",
    abstract: "List, create or delete an app's environments, or make one of them production.",
    subcommands: [List.self, Create.self, SetProduction.self, Delete.self],
    defaultSubcommand: List.self
  )

  struct List: AppCommand {
    static let configuration = CommandConfiguration(
      commandName: "list", abstract: "List environments with their heads.")
    @OptionGroup var app: AppOption
    @Flag(help: "Print JSON for machines.") var json = false
    @OptionGroup var storeOptions: StoreOptions

    func run() async throws {
      let info = try await storeOptions.readingService().app(app.app, logger: storeOptions.logger)
      if json { return try JSONOutput.print(info.environments) }
      for environment in info.environments {
        let head = environment.head.map { "v\($0)" } ?? "no version"
        print("\(environment.name)\(environment.isProduction ? " (production)" : "")  \(head)")
      }
    }
  }

  struct Create: AppCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create an environment.")
    @OptionGroup var app: AppOption
    @Argument(help: "The new environment's name.") var name: String
    @Flag(help: "Make it the app's production environment.") var production = false
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var output: OutputOptions

    func validate() throws { try validateName(name, as: "environment") }

    func run() async throws {
      try storeOptions.requireLocal("env create")
      try await storeOptions.vault().createEnvironment(
        app: app.app, name: name, production: production, author: storeOptions.who, logger: storeOptions.logger)
      output.say("created environment '\(name)' in app '\(app.app)'\(production ? " (production)" : "")")
    }
  }

  struct SetProduction: AppCommand {
    static let configuration = CommandConfiguration(
      commandName: "set-production",
      abstract: "Make an existing environment the app's production environment, in place of the one that was.")
    @OptionGroup var app: AppOption
    @Argument(help: "The environment to make production.") var name: String
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var output: OutputOptions

    func validate() throws { try validateName(name, as: "environment") }

    func run() async throws {
      try storeOptions.requireLocal("env set-production")
      let previous = try await storeOptions.vault().setProduction(
        app: app.app, name: name, author: storeOptions.who, logger: storeOptions.logger)
      output.say(
        "'\(name)' is now the production environment of '\(app.app)'"
          + (previous.map { " ('\($0)' no longer is)" } ?? ""))
    }
  }

  struct Delete: AppCommand {
    static let configuration = CommandConfiguration(
      commandName: "delete",
      abstract: "Delete an environment; its versions stay in the history.")
    @OptionGroup var app: AppOption
    @Argument(help: "The environment to delete.") var name: String
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
      try storeOptions.requireLocal("env delete")
      try await storeOptions.vault().deleteEnvironment(
        app: app.app, name: name, author: storeOptions.who, logger: storeOptions.logger)
      output.say("deleted environment '\(name)' of app '\(app.app)'; its versions stay in the history")
    }
  }
}
