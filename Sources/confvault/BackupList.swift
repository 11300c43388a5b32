import ArgumentParser
import ConfvaultCore
import Foundation

extension Backup {
  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "list",
      abstract:
        "List the backup files in a backup folder, oldest first; with --latest, the newest good one per environment.",
      discussion: """
        Prints one line per file: UTC time, app/environment, version, size and path, oldest first, so the newest is last. Only files whose names confvault writes are listed (both name layouts); nothing is read but the folder.
        --latest reads each environment's backups in full, newest first, and prints the first whose manifest and content check out (within the --max-* limits) and name the app, environment and version of the file's name; each newer file that does not is named on standard error. An environment with no good backup is an error (exit 65); an --app or --env with no backups in the folder is exit 1.
        Example (a restore script): file=$(confvault backup list --to /var/backups/confvault --app inventory --env production --latest --json | jq -r '.[0].file')
        """
    )

    @Option(help: "The backup folder.") var to: String
    @Option(help: "Only this app (repeatable; default: every app with backups).") var app: [String] = []
    @Option(name: .customLong("env"), help: "Only this environment (repeatable; default: each with backups).")
    var environments: [String] = []
    @Flag(help: "Only the newest backup of each environment that reads back good in full.") var latest = false
    @Flag(help: "Print JSON for machines.") var json = false
    @OptionGroup var limitOptions: ArchiveLimitOptions

    func validate() throws {
      for name in app { try validateName(name, as: "app") }
      for name in environments { try validateName(name, as: "environment") }
    }

    func run() async throws {
      let all = try BackupFolder(to).backups(apps: app, environments: environments)
      guard latest else { return try show(all) }
      var chosen: [BackupFile] = []
      var failures: [FailureKind] = []
      let byEnvironment = Dictionary(grouping: all) { [$0.app, $0.environment] }
      for key in byEnvironment.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
        do {
          chosen.append(
            try BackupFolder.newestGood(byEnvironment[key]!, limits: limitOptions.limits) { backup, error in
              Terminal.error("confvault: passed over `\(safe(backup.file))`: \(safe("\(error)"))\(advice(error))")
            })
        } catch {
          Terminal.error("confvault: \(safe("\(error)"))\(advice(error))")
          failures.append((error as? any ConfvaultError)?.kind ?? .operationFailed)
        }
      }
      try show(chosen.sorted { ($0.writtenAt, $0.version) < ($1.writtenAt, $1.version) })
      guard let kind = failures.first else { return }
      throw ExitCode(Set(failures).count == 1 ? ExitStatus.code(for: kind) : 1)
    }

    private func show(_ backups: [BackupFile]) throws {
      if json { return try JSONOutput.print(backups) }
      for backup in backups {
        print(
          "\(Timestamp.iso8601(backup.writtenAt))  \(backup.app)/\(backup.environment)  v\(backup.version)  \(ByteCount.format(backup.bytes))  \(safe(backup.file))"
        )
      }
    }

    /// What to do about a failure, if its error says: how to raise a limit it hit.
    private func advice(_ error: any Error) -> String {
      (error as? any ConfvaultError)?.hint.map { "; " + Advice.words(for: $0) } ?? ""
    }
  }
}
