import ArgumentParser
import ConfvaultCore

struct Push: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "push",
    abstract: "Make a new version of an environment from a configuration folder.",
    discussion: """
      A folder identical to the head makes no version. --backup pins the version: retention keeps it.
      Example:
        confvault push --app inventory --env development Samples/inventory/development -m "add loyalty tier"
      """
  )

  @OptionGroup var app: AppOption
  @Option(name: .customLong("env"), help: "The environment.") var environment: String
  @Argument(help: "The configuration folder.") var folder: String
  @Option(name: .shortAndLong, help: "The comment.") var message = ""
  @Flag(help: "Pin the new version as a backup.") var backup = false
  @Flag(help: "Show what would change, at key-path level; write nothing.") var dryRun = false
  @Flag(
    help:
      "Push everything in the folder: no built-in ignore rules, no .confvaultignore (the checkout record is never pushed)."
  )
  var noIgnore = false
  @Flag(help: "Push a checked-out folder even though the environment's head has moved past the version it came from.")
  var force = false
  @Flag(help: "Push a folder of no files, which empties the environment.") var allowEmpty = false
  @OptionGroup var limitOptions: ArchiveLimitOptions
  @OptionGroup var confirmation: ConfirmationOptions
  @OptionGroup var list: ChangeListOptions
  @Flag(help: "Print JSON for machines.") var json = false
  @OptionGroup var storeOptions: StoreOptions
  @OptionGroup var output: OutputOptions

  func run() async throws {
    try storeOptions.requireLocal("push")
    let scan = storeOptions.startScan(
      app: app.app, environment: environment, folder: folder, limits: limitOptions.limits,
      applyingIgnoreRules: !noIgnore)
    if dryRun {
      let status = try await storeOptions.readOnlyVault().folderStatus(
        app: app.app, environment: environment, folder: folder, storeName: storeOptions.checkoutStoreName,
        startedScan: scan, logger: storeOptions.logger)
      let preview = status.preview
      if json { return try JSONOutput.print(PushJSON.DryRun(preview: preview, ignored: status.ignored)) }
      Report.behindHead(status.behindHead, forced: force)
      Report.preview(preview, action: "pushing \(folder)", output: output, all: list.all)
      return Report.ignored(status.ignored, output: output)
    }
    let vault = try storeOptions.vault()
    let changeGuard = storeOptions.changeGuard(vault, confirmation)
    let action = "pushing \(folder)"
    let approve: Approval = { @Sendable preview in try await changeGuard.approve(preview, action: action) }
    // With --yes nothing is asked, so no preview is made.
    let approval = confirmation.yes ? nil : approve
    let pushed = try await Report.advisingBehindHead(app: app.app, environment: environment, folder: folder) {
      try await vault.push(
        app: app.app, environment: environment, folder: folder, comment: message, author: storeOptions.who,
        backup: backup, storeName: storeOptions.checkoutStoreName,
        pushBehindHead: force, allowEmpty: allowEmpty, approval: approval, startedScan: scan,
        logger: storeOptions.logger)
    }
    let change = pushed.change
    Report.pushedBehindHead(pushed.pushedBehindHead)
    if json { return try JSONOutput.print(PushJSON(change: Report.ChangeJSON(change), ignored: pushed.ignored)) }
    Report.change(change, verb: "pushed", output: output, all: list.all)
    Report.ignored(pushed.ignored, output: output)
  }
}

/// What `push --json` prints: the change (as `restore --json`), and what the ignore rules left out.
struct PushJSON: Encodable {
  var change: Report.ChangeJSON
  var ignored: [String]

  enum CodingKeys: CodingKey { case version, changes, unchanged, ignored }

  func encode(to encoder: any Encoder) throws {
    try change.encode(to: encoder)
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(ignored, forKey: .ignored)
  }

  /// `push --dry-run --json`: the preview, and what the ignore rules left out.
  struct DryRun: Encodable {
    var dryRun = true
    var preview: Vault.Preview
    var ignored: [String]
  }
}
