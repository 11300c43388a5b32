import ArgumentParser
import ConfvaultClient
import ConfvaultCore
import ConfvaultSQLite
import Foundation
import Logging

/// Options every store command takes: which store, and who is acting.
struct StoreOptions: ParsableArguments {
  @Option(
    help: "The store folder (default: $CONFVAULT_STORE, else $XDG_DATA_HOME/confvault or ~/.local/share/confvault).")
  var store: String?

  @Option(help: "Who makes the change (default: $CONFVAULT_AUTHOR, else the login name).")
  var author: String?

  @Flag(name: .long, help: "Log what happens on standard error.")
  var verbose = false

  @Option(help: "Run the command against this server's API instead of a store (default: $CONFVAULT_SERVER).")
  var server: String?

  @Option(help: "The API token for --server (default: $CONFVAULT_TOKEN).")
  var token: String?

  /// The server to talk to, if any.
  var serverURL: String? {
    if let server, !server.isEmpty { return server }
    let environment = ProcessInfo.processInfo.environment["CONFVAULT_SERVER"]
    return environment?.isEmpty == false ? environment : nil
  }

  private var apiToken: String? {
    token ?? ProcessInfo.processInfo.environment["CONFVAULT_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
  }

  /// The use cases for a command that changes things: over the server if one is named, else the store.
  func service() throws -> any VaultService {
    if let serverURL { return RemoteVault(server: serverURL, token: apiToken) }
    return try vault()
  }

  /// The use cases for a command that only reads: the store is opened read-only.
  func readingService() throws -> any VaultService {
    if let serverURL { return RemoteVault(server: serverURL, token: apiToken) }
    return try readOnlyVault()
  }

  /// The use cases for a command that reads, then records what it read (export).
  func readMostlyService() throws -> any VaultService {
    if let serverURL { return RemoteVault(server: serverURL, token: apiToken) }
    return try readMostlyVault()
  }

  /// Refuses `--server` for a command that works on a store only.
  func requireLocal(_ command: String) throws {
    guard let serverURL else { return }
    throw OperationError(
      .usage,
      "`confvault \(command)` works on a store, not through a server (\(serverURL)); run it where the store is, or use the page"
    )
  }

  var folder: String {
    let environment = ProcessInfo.processInfo.environment
    if let store { return store }
    if let store = environment["CONFVAULT_STORE"], !store.isEmpty { return store }
    if let data = environment["XDG_DATA_HOME"], !data.isEmpty { return data + "/confvault" }
    return (environment["HOME"] ?? NSHomeDirectory()) + "/.local/share/confvault"
  }

  var who: String {
    let environment = ProcessInfo.processInfo.environment
    if let author, !author.isEmpty { return author }
    if let author = environment["CONFVAULT_AUTHOR"], !author.isEmpty { return author }
    // Under sudo the login name is root; the person is the one who ran sudo.
    if geteuid() == 0, let user = environment["SUDO_USER"], !user.isEmpty, user != "root" { return user }
    if let user = environment["USER"] ?? environment["LOGNAME"], !user.isEmpty { return user }
    if let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name { return String(cString: name) }
    return "unknown"
  }

  /// Seconds a writer waits for another process's lock before exiting with 75.
  var lockTimeout: TimeInterval {
    ProcessInfo.processInfo.environment["CONFVAULT_LOCK_TIMEOUT"].flatMap(TimeInterval.init) ?? 30
  }

  /// The logger every use case is handed: debug with --verbose, else warnings only, on standard error.
  var logger: Logger {
    var logger = Logger(label: "confvault")
    logger.logLevel = verbose ? .debug : .warning
    return logger
  }

  /// Opens the store and the use cases over it, for a command that changes the store.
  func vault(create: Bool = false) throws -> Vault {
    try vault(.readWrite, create: create)
  }

  /// Opens the store for a command that only reads it: nothing is written, so it works on a read-only
  /// mount, without write permission and on a full disk.
  func readOnlyVault() throws -> Vault {
    try vault(.readOnly)
  }

  /// Opens the store for a command that reads and then records what it did (export), which still
  /// reads a store it cannot write.
  func readMostlyVault() throws -> Vault {
    try vault(.readMostly)
  }

  private func vault(_ access: SQLiteStore.Access, create: Bool = false) throws -> Vault {
    Vault(store: try sqliteStore(access, create: create))
  }

  /// The store's users, tokens and sessions, and the use cases over the same store.
  func server(create: Bool = false) throws -> (vault: Vault, principals: any PrincipalStore) {
    let store = try sqliteStore(.readWrite, create: create)
    return (Vault(store: store), store)
  }

  private func sqliteStore(_ access: SQLiteStore.Access, create: Bool = false) throws -> SQLiteStore {
    try SQLiteStore(folder: folder, access: access, create: create, lockTimeout: lockTimeout, logger: logger)
  }
}

/// `--app`, which every store command but `check`, `gc` and `audit` requires.
struct AppOption: ParsableArguments {
  @Option(help: "The app.")
  var app: String

  func validate() throws { try validateName(app, as: "app") }
}

/// How commands print what changed between two trees.
enum ChangePrinter {
  static func marker(_ kind: FileChange.Kind) -> String {
    switch kind {
    case .added: return "A"
    case .removed: return "D"
    case .modified: return "M"
    case .modeChanged: return "m"
    }
  }

  /// One line per changed file, and a summary line.
  static func summary(_ changes: [FileChange]) -> [String] {
    var lines = changes.map { change -> String in
      var line = "  \(marker(change.kind)) \(safe(change.path))"
      if change.kind == .modeChanged, let old = change.old, let new = change.new {
        line += "  (mode \(old.mode.rawValue) -> \(new.mode.rawValue))"
      }
      return line
    }
    let count = { (kind: FileChange.Kind) in changes.filter { $0.kind == kind }.count }
    lines.append(
      "  \(changes.count) files changed: \(count(.added)) added, \(count(.removed)) removed, \(count(.modified)) modified, \(count(.modeChanged)) mode changed"
    )
    return lines
  }
}
