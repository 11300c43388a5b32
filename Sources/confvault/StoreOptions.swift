import ArgumentParser
import ConfvaultClient
import ConfvaultCore
import ConfvaultPostgres
import ConfvaultSQLite
import Foundation
import Logging
import Synchronization

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
    if let serverURL { return remote(serverURL) }
    return try vault()
  }

  /// The use cases for a command that only reads: the store is opened read-only.
  func readingService() throws -> any VaultService {
    if let serverURL { return remote(serverURL) }
    return try readOnlyVault()
  }

  /// The use cases for a command that reads, then records what it read (export).
  func readMostlyService() throws -> any VaultService {
    if let serverURL { return remote(serverURL) }
    return try readMostlyVault()
  }

  /// What asks before a change to production or one that removes most of an environment.
  func changeGuard(_ service: any VaultService, _ confirmation: ConfirmationOptions) -> ChangeGuard {
    ChangeGuard(service: service, yes: confirmation.yes, logger: logger)
  }

  /// A URL as it may be logged: without a user or password in it.
  static func withoutCredentials(_ url: String) -> String {
    guard var components = URLComponents(string: url), components.user != nil || components.password != nil else {
      return url
    }
    components.user = nil
    components.password = nil
    return components.string ?? "(a URL)"
  }

  private func remote(_ serverURL: String) -> RemoteVault {
    logger.debug(
      "talking to a server",
      metadata: ["server": "\(Self.withoutCredentials(serverURL))", "token": "\(apiToken == nil ? "none" : "given")"])
    return RemoteVault(server: serverURL, token: apiToken)
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

  /// The stat cache of `folder` pushed to `app`/`environment` of this store: under
  /// `$XDG_CACHE_HOME/confvault/stat` (or `~/.cache/confvault/stat`), one file per store, app,
  /// environment and folder. `CONFVAULT_STAT_CACHE=off` reads every file every time.
  private func statCache(app: String, environment: String, folder: String) -> String? {
    let variables = ProcessInfo.processInfo.environment
    guard variables["CONFVAULT_STAT_CACHE"] != "off" else { return nil }
    let cache =
      variables["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
      ?? (variables["HOME"] ?? NSHomeDirectory()) + "/.cache"
    let real = realpath(folder, nil).map { pointer in
      defer { free(pointer) }
      return String(cString: pointer)
    }
    let key = [checkoutStoreName, app, environment, real ?? folder].joined(separator: "\u{0}")
    return cache + "/confvault/stat/" + SHA256Hex.of(Data(key.utf8)).value
  }

  /// Begins the scan of `folder` that a push to `app`/`environment`, or its status, reads, through the
  /// folder's stat cache: the folder is walked and hashed while the store opens. What the scan finds
  /// wrong is told only after what is wrong with the store, the app or the environment.
  func startScan(
    app: String, environment: String, folder: String, limits: ArchiveLimits, applyingIgnoreRules: Bool
  ) -> Vault.StartedScan {
    Vault.StartedScan(
      folder: folder, limits: limits, applyingIgnoreRules: applyingIgnoreRules,
      statCache: statCache(app: app, environment: environment, folder: folder), logger: logger)
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
    Vault(store: try openStore(access, create: create))
  }

  /// The store's users, tokens and sessions, and the use cases over the same store.
  func server(create: Bool = false) throws -> (vault: Vault, principals: any PrincipalStore) {
    let store = try openStore(.readWrite, create: create)
    return (Vault(store: store), store)
  }

  /// The store `--store` names: a PostgreSQL database for a `postgres://` URL, else an SQLite folder.
  private func openStore(_ access: SQLiteStore.Access, create: Bool) throws -> any VersionStore & PrincipalStore {
    DatabaseLocation.isURL(folder) ? try postgresStore(access, create: create) : try sqliteStore(access, create: create)
  }

  private func sqliteStore(_ access: SQLiteStore.Access, create: Bool = false) throws -> SQLiteStore {
    let start = ContinuousClock.now
    let store = try SQLiteStore(
      folder: folder, access: access, create: create, lockTimeout: lockTimeout, logger: logger)
    logger.debug(
      "store opened",
      metadata: ["path": "\(folder)", "access": "\(access)", "took": "\(ContinuousClock.now - start)"])
    return store
  }

  /// Opens a PostgreSQL store; its password comes from PGPASSWORD or ~/.pgpass, and is never shown.
  /// The store is closed when the command ends (`OpenStores.closeAll`).
  private func postgresStore(_ access: SQLiteStore.Access, create: Bool) throws -> PostgresStore {
    let location = try DatabaseLocation(
      url: folder, environment: ProcessInfo.processInfo.environment, defaultUser: loginName)
    let store = try PostgresStore(
      location: location, readOnly: access == .readOnly, create: create, lockTimeout: lockTimeout, logger: logger)
    OpenStores.add(store)
    logger.debug("store opened", metadata: ["url": "\(location)", "access": "\(access)"])
    return store
  }

  /// The name of the user running the command, PostgreSQL's default role name.
  private var loginName: String {
    if let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name { return String(cString: name) }
    return ProcessInfo.processInfo.environment["USER"] ?? "postgres"
  }
}

/// `--app`, which every store command but `check`, `gc` and `audit` takes: else `CONFVAULT_APP`,
/// else the store's only app (see `AppCommand`).
struct AppOption: ParsableArguments {
  @Option(name: .customLong("app"), help: "The app (default: $CONFVAULT_APP, else the store's only app).")
  var named: String?

  /// The app's name; empty until `AppCommand.resolveApp` has asked the store when nothing named it.
  var app: String {
    if let named { return named }
    let environment = ProcessInfo.processInfo.environment["CONFVAULT_APP"]
    return environment?.isEmpty == false ? environment! : ""
  }

  func validate() throws {
    if !app.isEmpty { try validateName(app, as: "app") }
  }
}

/// A command that works on one app: when neither `--app` nor `CONFVAULT_APP` names it, the store's
/// only app is taken, and a store of several apps is a usage error listing them.
protocol AppCommand: AsyncParsableCommand {
  var app: AppOption { get set }
  var storeOptions: StoreOptions { get }
}

extension AppCommand {
  mutating func resolveApp() async throws {
    guard app.app.isEmpty else { return }
    let apps = try await storeOptions.readingService().apps(logger: storeOptions.logger).map(\.name)
    guard apps.count == 1 else {
      throw OperationError(
        .usage,
        apps.isEmpty
          ? "no app given and the store has none; create one with `confvault init --app NAME`"
          : "no app given: name one with --app or CONFVAULT_APP (the store holds \(apps.map { "'\($0)'" }.joined(separator: ", ")))"
      )
    }
    app.named = apps[0]
  }
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

  /// One line per changed file (the first `listing` of them, when given), and a summary line.
  static func summary(_ changes: [FileChange], listing: Int? = nil) -> [String] {
    let listed = listing.map { Array(changes.prefix($0)) } ?? changes
    var lines = listed.map { change -> String in
      var line = "  \(marker(change.kind)) \(safe(change.path))"
      if let old = change.old, let new = change.new, old.mode != new.mode {
        line += "  (mode \(old.mode.rawValue) -> \(new.mode.rawValue))"
      }
      return line
    }
    if listed.count < changes.count, listed.count > 0 {
      lines.append("  … and \(changes.count - listed.count) more files (--all lists every one)")
    }
    let count = { (kind: FileChange.Kind) in changes.filter { $0.kind == kind }.count }
    lines.append(
      "  \(changes.count) files changed: \(count(.added)) added, \(count(.removed)) removed, \(count(.modified)) modified, \(count(.modeChanged)) mode changed"
    )
    return lines
  }
}

extension Checkout: AppCommand {}
extension Diff: AppCommand {}
extension Export: AppCommand {}
extension Import: AppCommand {}
extension Push: AppCommand {}
extension Restore: AppCommand {}
extension Show: AppCommand {}
extension Sync: AppCommand {}
extension Versions: AppCommand {}
extension Status: AppCommand {}

/// The PostgreSQL stores a command opened: their connection pools run in tasks of their own, and are
/// closed before the process exits, so the server sees each connection end politely.
enum OpenStores {
  private static let stores = Mutex<[PostgresStore]>([])

  static func add(_ store: PostgresStore) {
    stores.withLock { $0.append(store) }
  }

  static func closeAll() async {
    let open = stores.withLock { stores in
      defer { stores.removeAll() }
      return stores
    }
    for store in open { await store.close() }
  }
}
