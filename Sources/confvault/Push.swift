import ArgumentParser
import ConfvaultCore

struct Push: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Make a new version of an environment from a configuration folder.",
    discussion: """
      A folder identical to the head makes no version. --backup pins the version: retention keeps it.
      Example: confvault push --app inventory --env development Samples/inventory/development -m "add loyalty tier"
      """
  )

  @OptionGroup var app: AppOption
  @Option(name: .customLong("env"), help: "The environment.") var environment: String
  @Argument(help: "The configuration folder.") var folder: String
  @Option(name: .shortAndLong, help: "The comment.") var message = ""
  @Flag(help: "Pin the new version as a backup.") var backup = false
  @Flag(help: "Show what would change, at key-path level; write nothing.") var dryRun = false
  @OptionGroup var storeOptions: StoreOptions
  @OptionGroup var output: OutputOptions

  func run() async throws {
    try storeOptions.requireLocal("push")
    if dryRun {
      let preview = try await storeOptions.readOnlyVault().previewPush(
        app: app.app, environment: environment, folder: folder, logger: storeOptions.logger)
      return Report.preview(preview, action: "pushing \(folder)", output: output)
    }
    let vault = try storeOptions.vault()
    let change = try await vault.push(
      app: app.app, environment: environment, folder: folder, comment: message, author: storeOptions.who,
      backup: backup, logger: storeOptions.logger)
    Report.change(change, verb: "pushed", output: output)
  }
}

/// Prints the outcome of a command that adds a version.
enum Report {
  /// A dry run: what the change would do, file by file with key paths; nothing was written.
  static func preview(_ preview: Vault.Preview, action: String, output: OutputOptions) {
    let head = preview.head.map { "v\($0)" } ?? "no version yet"
    guard !preview.changes.isEmpty else {
      output.say("dry run: \(action) would change nothing in \(preview.app)/\(preview.environment) (head \(head))")
      return
    }
    output.say(
      "dry run: \(action) into \(preview.app)/\(preview.environment) (head \(head)) would change these files; nothing was written:"
    )
    for file in preview.files { output.say(String(Diff.render(file).dropLast())) }
    output.say(ChangePrinter.summary(preview.changes).last!.trimmingCharacters(in: .whitespaces))
  }

  static func change(_ change: Vault.Change, verb: String, output: OutputOptions) {
    switch change {
    case .unchanged(let head):
      output.say("unchanged, head is v\(head.number)")
    case .created(let version, let changes):
      output.say(
        "\(verb) v\(version.number) to \(version.app)/\(version.environment) (\(version.fileCount) files, \(ByteCount.format(version.totalSize)))"
          + (version.parent.map { "; changes against v\($0):" } ?? "; first version of the environment"))
      if version.parent != nil {
        for line in ChangePrinter.summary(changes) { output.say(line) }
      }
    }
  }
}
