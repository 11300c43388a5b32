import ArgumentParser
import ConfvaultCore
import Foundation

struct Token: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "token",
    abstract: "Create, list or revoke the API tokens scripts and the CLI use against a server.",
    subcommands: [Create.self, List.self, Revoke.self]
  )

  struct Create: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "create",
      abstract: "Create a token; it is printed once, alone on standard output, and stored only as a hash.",
      discussion: """
        Example:
          export CONFVAULT_TOKEN=$(confvault token create --name nightly --role viewer)
        """)
    @Option(help: "The token's name, shown as the author of what it does.") var name: String
    @Option(help: "viewer, deployer, releaser or admin.") var role: Role
    @OptionGroup var storeOptions: StoreOptions

    func validate() throws { try validateName(name, as: "token") }

    func run() async throws {
      let secret = Secret.make(prefix: "cvt_")
      try await storeOptions.server(create: true).principals.addToken(
        TokenRecord(name: name, role: role, createdAt: Timestamp.now(), revokedAt: nil, hash: Secret.hash(secret)))
      print(secret)
    }
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "list", abstract: "List tokens: name, role, created, revoked.")
    @Flag(help: "Print JSON for machines.") var json = false
    @OptionGroup var storeOptions: StoreOptions

    struct Row: Encodable {
      var name: String
      var role: Role
      var createdAt: Date
      @ExplicitNull var revokedAt: Date?
    }

    func run() async throws {
      let tokens = try await storeOptions.server().principals.tokens()
      let rows = tokens.map { Row(name: $0.name, role: $0.role, createdAt: $0.createdAt, revokedAt: $0.revokedAt) }
      if json { return try JSONOutput.print(rows) }
      for row in rows {
        print(
          "\(safe(row.name))  \(row.role.rawValue)  created \(Timestamp.iso8601(row.createdAt))"
            + (row.revokedAt.map { "  revoked \(Timestamp.iso8601($0))" } ?? ""))
      }
    }
  }

  struct Revoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "revoke", abstract: "Revoke a token: it is refused from now on.")
    @Argument(help: "The token's name.") var name: String
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
      try await storeOptions.server().principals.revokeToken(name, at: Timestamp.now())
      output.say("revoked token \(name)")
    }
  }
}
