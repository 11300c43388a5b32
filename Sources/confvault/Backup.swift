import ArgumentParser
import ConfvaultCore
import Foundation

struct Backup: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "backup",
    abstract:
      "Back up each environment's head to a folder, read it back and apply retention; or list the backups there.",
    discussion: """
      `confvault backup --to DIR ...` runs a backup (`run` is the default subcommand, so the word may be left out); `confvault backup list --to DIR` lists the backups in DIR. `confvault backup run --help` shows the options of a run.
      Files are DIR/<app>/<env>/<UTC time>-<app>-<env>-v<N>.tar.zst, so a plain `ls` lists them oldest first; the names of earlier confvault versions, <app>-<env>-v<N>-<UTC time>.tar.zst, are still recognised for listing and retention.
      Example (nightly from cron): confvault backup --to /var/backups/confvault --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --quiet
      Example (the newest backup of production that reads back good): confvault backup list --to /var/backups/confvault --app inventory --env production --latest
      """,
    subcommands: [Run.self, List.self],
    defaultSubcommand: Run.self
  )
}

extension Backup {
  struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "run",
      abstract: "Write each environment's head to a backup folder, read it back, and apply retention.",
      discussion: """
        Files are DIR/<app>/<env>/<UTC time>-<app>-<env>-v<N>.tar.zst, written atomically and read back in full, within the --max-* limits, before they count. An environment whose newest backup holds its head is skipped. A backup that fails its read-back is removed and its environment fails with the reason: a version the limits refuse exits 65 and names the limit and the flag that raises it.
        Retention keeps a file if any --keep rule keeps it; without one nothing is deleted; the newest backup that reads back good is never deleted, nor anything of an environment whose backup failed, nor any file whose name confvault did not write. One run at a time per folder.
        Example (nightly from cron): confvault backup --to /var/backups/confvault --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --quiet
        """
    )

    @Option(help: "The backup folder.") var to: String
    @Option(help: "Only this app (repeatable; default: every app).") var app: [String] = []
    @Option(name: .customLong("env"), help: "Only this environment (repeatable; default: each with a head).")
    var environments: [String] = []
    @Option(help: "gzip, zstd, xz or none.") var compression: Compression = .zstd
    @Option(help: "Keep the newest N backups.") var keepLast = 0
    @Option(help: "Keep the newest backup of each of the newest N hours.") var keepHourly = 0
    @Option(help: "Keep the newest backup of each of the newest N days.") var keepDaily = 0
    @Option(help: "Keep the newest backup of each of the newest N weeks.") var keepWeekly = 0
    @Option(help: "Keep the newest backup of each of the newest N months.") var keepMonthly = 0
    @Option(help: "Keep the newest backup of each of the newest N years.") var keepYearly = 0
    @Option(help: "Keep every backup younger than this, counted from the newest (30d, 12h, 2w, 1y).")
    var keepWithin: String?
    @Flag(help: "Write even when the newest backup holds the head already.") var always = false
    @Flag(help: "Print what would be written and deleted; change nothing.") var dryRun = false
    @Option(help: "Seconds to wait for another run's lock (default: exit 75 at once).") var wait: Double = 0
    @Option(help: "Also write Prometheus textfile-collector metrics to this file.") var metricsFile: String?
    @Flag(help: "Print JSON for machines.") var json = false
    @OptionGroup var limitOptions: ArchiveLimitOptions
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
      for name in app { try validateName(name, as: "app") }
      for name in environments { try validateName(name, as: "environment") }
      for value in [keepLast, keepHourly, keepDaily, keepWeekly, keepMonthly, keepYearly] where value < 0 {
        throw ValidationError("--keep-* values must be 0 or more")
      }
      if let keepWithin, RetentionPolicy.duration(keepWithin) == nil {
        throw ValidationError("--keep-within `\(keepWithin)` is not a duration such as 30d, 12h, 2w or 1y")
      }
      guard wait >= 0 else { throw ValidationError("--wait must be 0 or more seconds") }
    }

    func run() async throws {
      var options = BackupRun.Options(folder: to, author: storeOptions.who)
      options.apps = app
      options.environments = environments
      options.compression = compression
      options.limits = limitOptions.limits
      options.retention = RetentionPolicy(
        last: keepLast, hourly: keepHourly, daily: keepDaily, weekly: keepWeekly, monthly: keepMonthly,
        yearly: keepYearly, within: keepWithin.flatMap(RetentionPolicy.duration))
      options.always = always
      options.dryRun = dryRun
      options.wait = wait
      // A line per environment as it finishes; JSON, a whole document, at the end.
      let report = try await storeOptions.service().backup(options, logger: storeOptions.logger) { outcome in
        if !json { print(outcome) }
      }
      if let metricsFile, let state = report.state {
        try writeAtomically(Data(state.prometheusText().utf8), to: metricsFile)
      }
      if json { try JSONOutput.print(report.outcomes) }
      let failures = report.outcomes.filter { $0.status == .failed }
      guard let first = failures.first else { return }
      // A refused read-back, disk full, an unwritable folder or refused access keep their own codes
      // when every failure is of that one kind; anything else is 1.
      let kinds = Set(failures.compactMap(\.failureKind))
      let kind = first.failureKind ?? .operationFailed
      let own: Set<FailureKind> = [.badInput, .ioError, .cannotCreateOutput, .permissionDenied]
      throw ExitCode(kinds.count == 1 && own.contains(kind) ? ExitStatus.code(for: kind) : 1)
    }

    private func print(_ outcome: BackupRun.Outcome) {
      let name = "\(outcome.app)/\(outcome.environment)"
      let took = String(format: "%.2fs", outcome.seconds)
      switch outcome.status {
      case .failed:
        // Such as how to raise a limit the read-back hit; a backup never replaces a file, so "use
        // --force" does not apply.
        let advice = outcome.hint.flatMap { $0 == .replaceExisting ? nil : "; " + Advice.words(for: $0) } ?? ""
        Terminal.error("confvault: backup of \(name) failed: \(safe(outcome.message ?? "unknown error"))\(advice)")
      case .unchanged:
        output.say("\(name)  unchanged  v\(outcome.version ?? 0)  \(outcome.message ?? "")  \(took)")
      case .written:
        if let path = outcome.wouldWrite {
          output.say("\(name)  would write  v\(outcome.version ?? 0)  \(path)")
        } else {
          output.say(
            "\(name)  written  v\(outcome.version ?? 0)  \(ByteCount.format(outcome.bytes ?? 0))  \(took)  \(outcome.file ?? "")"
          )
        }
      }
      for path in outcome.deleted {
        output.say("\(name)  \(dryRun ? "would delete" : "deleted")  \(path)  (retention)")
      }
    }
  }
}
