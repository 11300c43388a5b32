import ArgumentParser
import ConfvaultCore
import ConfvaultServer
import Foundation

struct User: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "user",
    abstract: "Add, list or remove the users who sign in to the page.",
    subcommands: [Add.self, List.self, Remove.self]
  )

  struct Add: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "add",
      abstract: "Add a user; the password is read from standard input (asked for on a terminal).",
      discussion: """
        Example:
          printf '%s\\n' "$PASSWORD" | confvault user add ana --role releaser
        """)
    @Argument(help: "The user's name.") var name: String
    @Option(help: "viewer, deployer, releaser or admin.") var role: Role
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var output: OutputOptions

    func validate() throws { try validateName(name, as: "user") }

    func run() async throws {
      let password = try Password.read(prompt: "password for \(name): ")
      let (_, principals) = try storeOptions.server(create: true)
      try await principals.addUser(
        UserRecord(name: name, role: role, createdAt: Timestamp.now(), passwordHash: Passwords.hash(password)))
      output.say("added user \(name) (\(role.rawValue))")
    }
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the users and their roles.")
    @Flag(help: "Print JSON for machines.") var json = false
    @OptionGroup var storeOptions: StoreOptions

    struct Row: Encodable {
      var name: String
      var role: Role
      var createdAt: Date
    }

    func run() async throws {
      let users = try await storeOptions.server().principals.users()
      if json { return try JSONOutput.print(users.map { Row(name: $0.name, role: $0.role, createdAt: $0.createdAt) }) }
      for user in users { print("\(safe(user.name))  \(user.role.rawValue)  \(Timestamp.iso8601(user.createdAt))") }
    }
  }

  struct Remove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "remove", abstract: "Remove a user and end its sessions.")
    @Argument(help: "The user's name.") var name: String
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
      try await storeOptions.server().principals.removeUser(name)
      output.say("removed user \(name)")
    }
  }
}

extension Role: ExpressibleByArgument {}

/// A password from standard input: asked for without echo on a terminal, else its first line.
enum Password {
  static func read(prompt: String) throws -> String {
    let password: String?
    if Terminal.isTerminal(STDIN_FILENO) {
      password = getpass(prompt).map { String(cString: $0) }
    } else {
      password = readLine(strippingNewline: true)
    }
    guard let password, password.count >= 8 else {
      throw ValidationError("a password of at least 8 characters is needed on standard input")
    }
    return password
  }
}
