import ArgumentParser
import ConfvaultCore
import Foundation

/// `confvault store …`: work on a store as a whole.
struct StoreCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "store",
    abstract: "Work on a store as a whole: copy it into another store.",
    subcommands: [Copy.self]
  )

  struct Copy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "copy",
      abstract: "Copy every app, environment, version and audit entry of one store into another, empty store.",
      discussion: """
        Between any two stores, SQLite folders and postgres:// URLs alike: version numbers, authors, dates, comments, pins, sync dates, heads and the audit log (ids included) stay as they are, and every tree digest is checked as it is written.
        The target must be empty: a folder that does not exist yet (it is made) or holds no store, or a database with no confvault store or an empty one. A target that holds an app or an audit entry is refused (exit 73) and nothing is changed. A copy that fails part way leaves a target that is not empty: remove it and copy again.
        Stop what changes the source first (servers, cron): a change made while the copy runs may or may not be copied.
        Example:
          confvault store copy --from /var/lib/confvault --to postgres://confvault@db.example.com/confvault
        """
    )

    @Option(help: ArgumentHelp("The store to copy: a folder or a postgres:// URL.", valueName: "store"))
    var from: String
    @Option(
      help: ArgumentHelp(
        "The empty store to copy into: a folder (made if missing) or a postgres:// URL.", valueName: "store"))
    var to: String
    @Flag(help: "Print JSON for machines.") var json = false
    @Flag(name: .long, help: "Log what happens on standard error.") var verbose = false
    @OptionGroup var output: OutputOptions

    func validate() throws {
      guard !from.isEmpty, !to.isEmpty else { throw ValidationError("--from and --to must name a store") }
      guard from != to else { throw ValidationError("--from and --to name the same store `\(to)`") }
    }

    func run() async throws {
      // Each store is opened as `--store` opens it, so a folder and a URL mean here what they mean there.
      let source = try options(from).readOnlyVault().store
      let target = try options(to).vault(create: true).store
      let logger = try options(to).logger
      let quiet = output.quiet || json
      let summary = try await ProgressDisplay.run("copying", quiet: quiet) {
        try await StoreCopy(from: source, to: target).run(logger: logger) { app, copied in
          guard !quiet else { return }
          print(
            "copied app '\(safe(app))': \(copied.environments) environments, \(copied.versions) versions, "
              + "\(copied.auditEntries) audit entries, \(copied.blobs) new contents (\(ByteCount.format(copied.bytes)))"
          )
        }
      }
      if json { return try JSONOutput.print(summary) }
      output.say(
        "copied \(summary.apps) apps, \(summary.versions) versions and \(summary.auditEntries) audit entries "
          + "from `\(safe(from))` to `\(safe(to))`")
    }

    /// The store options `--store LOCATION` would give, with this command's `--verbose`.
    private func options(_ location: String) throws -> StoreOptions {
      try StoreOptions.parse(["--store", location] + (verbose ? ["--verbose"] : []))
    }
  }
}
