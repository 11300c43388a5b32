import ArgumentParser
import ConfvaultCore
import ConfvaultPostgres
import Foundation

struct Status: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "status",
    abstract: "Show what a push of a folder would change against an environment's head; write nothing.",
    discussion: """
      Prints each file a push would change, with its key paths, the files the ignore rules leave out (the built-in rules and the folder's .confvaultignore), and a warning when the environment's head has moved past the version the folder was checked out from. Exits 0 in every such case.
      Example:
        confvault status --app inventory --env development ./development
      """
  )

  @OptionGroup var app: AppOption
  @Option(name: .customLong("env"), help: "The environment.") var environment: String
  @Argument(help: "The configuration folder.") var folder: String
  @Flag(help: "Compare everything in the folder: no built-in ignore rules, no .confvaultignore.") var noIgnore = false
  @OptionGroup var list: ChangeListOptions
  @OptionGroup var limitOptions: ArchiveLimitOptions
  @Flag(help: "Print JSON for machines.") var json = false
  @OptionGroup var storeOptions: StoreOptions
  @OptionGroup var output: OutputOptions

  func validate() throws { try validateName(environment, as: "environment") }

  func run() async throws {
    try storeOptions.requireLocal("status")
    let scan = storeOptions.startScan(
      app: app.app, environment: environment, folder: folder, limits: limitOptions.limits,
      applyingIgnoreRules: !noIgnore)
    let status = try await storeOptions.readOnlyVault().folderStatus(
      app: app.app, environment: environment, folder: folder, storeName: storeOptions.checkoutStoreName,
      startedScan: scan, logger: storeOptions.logger)
    if json { return try JSONOutput.print(StatusJSON(status)) }
    if let record = status.checkout {
      let origin = "v\(record.version) of \(record.app)/\(record.environment)"
      let elsewhere = record.store == storeOptions.checkoutStoreName ? "" : " in the store \(record.store)"
      output.say(safe("\(folder) was checked out from \(origin)\(elsewhere)"))
    }
    Report.behindHead(status.behindHead, forced: false)
    for line in Report.previewLines(status.preview, action: "a push of \(safe(folder))", all: list.all) {
      output.say(line)
    }
    Report.ignored(status.ignored, output: output)
  }

  /// The status as `--json` prints it.
  struct StatusJSON: Encodable {
    var app: String
    var environment: String
    @ExplicitNull var head: Int?
    /// The folder's checkout record, whichever environment or store it names.
    @ExplicitNull var checkedOutFrom: CheckoutRecord?
    /// The record names this environment and store, and its head has moved past the record's version.
    var headMoved: Bool
    /// The files a push would change, with what changed inside each.
    var changes: [FileDiff]
    /// What the ignore rules leave out; a folder ends with `/`.
    var ignored: [String]

    init(_ status: Vault.FolderStatus) {
      app = status.preview.app
      environment = status.preview.environment
      head = status.preview.head
      checkedOutFrom = status.checkout
      headMoved = status.behindHead != nil
      changes = status.preview.files
      ignored = status.ignored
    }
  }
}

extension StoreOptions {
  /// How checkout records name this store: the store folder's real absolute path (a URL without its
  /// credentials), so a record names one store however the folder was spelled.
  var checkoutStoreName: String {
    let folder = self.folder
    if DatabaseLocation.isURL(folder),
      let location = try? DatabaseLocation(
        url: folder, environment: ProcessInfo.processInfo.environment, defaultUser: "")
    {
      // One database however its URL is spelled (a default port, a socket folder), whoever connects.
      return "postgres://\(location.host):\(location.port)/\(location.database)"
    }
    if let resolved = realpath(folder, nil) {
      defer { free(resolved) }
      return String(cString: resolved)
    }
    return URL(fileURLWithPath: folder).standardizedFileURL.path
  }
}

extension Report {
  /// How many ignored paths are named before the rest are only counted.
  static let ignoredNamed = 5

  /// One line saying what the ignore rules left out: the count and the first few paths.
  static func ignored(_ paths: [String], output: OutputOptions) {
    guard !paths.isEmpty else { return }
    let named = paths.prefix(ignoredNamed).map { safe($0) }.joined(separator: ", ")
    let more = paths.count > ignoredNamed ? " and \(paths.count - ignoredNamed) more" : ""
    output.say(
      "ignored \(paths.count) \(paths.count == 1 ? "path" : "paths"): \(named)\(more) (built-in rules and .confvaultignore; --no-ignore keeps them)"
    )
  }

  /// Runs a push, saying in the command line's words what to do about a folder whose environment's
  /// head has moved past its checkout.
  static func advisingBehindHead<T>(
    app: String, environment: String, folder: String, _ body: () async throws -> T
  ) async throws -> T {
    do {
      return try await body()
    } catch let behind as FolderBehindHead {
      throw OperationError(
        .conflict,
        "\(behind); run `confvault status --app \(app) --env \(environment) \(folder)` to see what it would change, or pass --force to push it anyway"
      )
    }
  }

  /// Warns, before a push's preview, that the environment's head has moved past the folder's checkout.
  static func behindHead(_ behind: FolderBehindHead?, forced: Bool) {
    guard let behind else { return }
    Terminal.error(
      "confvault: warning: " + safe(behind.situation)
        + (forced
          ? "; it would be pushed anyway, as --force asks"
          : "; a push would be refused, as it would undo what changed since v\(behind.record.version)"))
  }

  /// Warns that a folder was pushed although the head had moved past its checkout.
  static func pushedBehindHead(_ behind: FolderBehindHead?) {
    guard let behind else { return }
    Terminal.error("confvault: warning: " + safe(behind.situation) + "; pushed anyway, as --force asked")
  }
}
