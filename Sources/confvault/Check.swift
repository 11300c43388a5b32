import ArgumentParser
import ConfvaultCore
import Foundation

struct Check: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "check",
    abstract: "Check the store: every blob's hash, every folder, every version's tree, every head, the numbering.",
    discussion: "Exits 1 and lists every inconsistency found. Unreferenced blobs are reported, not errors."
  )

  @Flag(help: "Print JSON for machines.") var json = false
  @OptionGroup var storeOptions: StoreOptions

  func run() async throws {
    try storeOptions.requireLocal("check")
    let report = try await ProgressDisplay.run("checking", quiet: json) {
      try await storeOptions.readOnlyVault().check(logger: storeOptions.logger)
    }
    if json {
      try JSONOutput.print(report)
    } else {
      for problem in report.problems { print("problem: \(safe(problem))") }
      print(
        "\(report.isConsistent ? "OK" : "INCONSISTENT"): \(report.versions) versions, \(report.blobs) blobs, "
          + "\(report.folders) folders (\(ByteCount.format(report.folderBytes)))"
          + (report.unreferencedBlobs > 0
            ? ", \(report.unreferencedBlobs) unreferenced (`confvault gc` removes them)" : ""))
    }
    if !report.isConsistent { throw ExitCode(1) }
  }
}

struct GC: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "gc",
    abstract: "Remove stored blobs that no version refers to, and what killed imports left behind.",
    discussion: """
      Blobs stored less than --grace seconds ago are kept: an import or push in flight in another process stores its blobs before it adds its version.
      """)
  @Option(help: "Keep unreferenced blobs stored less than this many seconds ago.") var grace: Double = 3600
  @OptionGroup var storeOptions: StoreOptions
  @OptionGroup var output: OutputOptions

  func validate() throws {
    guard grace >= 0 else { throw ValidationError("--grace must be 0 or more seconds") }
  }

  func run() async throws {
    try storeOptions.requireLocal("gc")
    let collected = try await storeOptions.vault().collectGarbage(grace: grace, logger: storeOptions.logger)
    output.say(
      "removed \(collected.blobs) unreferenced blobs"
        + (collected.stagingFolders > 0 ? " and \(collected.stagingFolders) abandoned import staging folders" : ""))
  }
}

struct Audit: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "audit",
    abstract: "Who did what, when, to which version, with which archive digest.",
    discussion: """
      Example:
        confvault audit --app inventory --limit 20
      """
  )

  @Option(help: "Only this app.") var app: String?
  @Option(help: "How many entries (the newest).") var limit = 100
  @Flag(help: "Print JSON for machines.") var json = false
  @OptionGroup var storeOptions: StoreOptions

  func run() async throws {
    let entries = try await storeOptions.readingService().audit(app: app, limit: limit, logger: storeOptions.logger)
    if json { return try JSONOutput.print(entries) }
    for entry in entries {
      let target = [entry.app, entry.environment].compactMap { $0 }.map(safe).joined(separator: "/")
      print(
        "\(Timestamp.iso8601(entry.at))  \(safe(entry.author))  \(entry.action.rawValue)  \(target)"
          + (entry.version.map { "  v\($0)" } ?? "") + "  \(safe(entry.detail))"
          + (entry.archiveSHA256.map { "  archive sha256 \($0)" } ?? ""))
    }
  }
}
