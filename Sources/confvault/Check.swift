import ArgumentParser
import ConfvaultCore
import Foundation

struct Check: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Check the store: every blob's hash, every tree entry, every head, the numbering.",
    discussion: "Exits 1 and lists every inconsistency found. Unreferenced blobs are reported, not errors."
  )

  @Flag(help: "Print JSON for machines.") var json = false
  @OptionGroup var storeOptions: StoreOptions

  func run() throws {
    let report = try storeOptions.vault().store.check()
    if json {
      try JSONOutput.print(report)
    } else {
      for problem in report.problems { print("problem: \(problem)") }
      print(
        "\(report.isConsistent ? "OK" : "INCONSISTENT"): \(report.versions) versions, \(report.blobs) blobs"
          + (report.unreferencedBlobs > 0
            ? ", \(report.unreferencedBlobs) unreferenced (`confvault gc` removes them)" : ""))
    }
    if !report.isConsistent { throw ExitCode(1) }
  }
}

struct GC: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "gc", abstract: "Remove stored blobs that no version refers to.")
  @OptionGroup var storeOptions: StoreOptions
  @OptionGroup var output: OutputOptions

  func run() throws {
    let removed = try storeOptions.vault().store.collectGarbage()
    output.say("removed \(removed) unreferenced blobs")
  }
}

struct Audit: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Who did what, when, to which version, with which archive digest.",
    discussion: "Example: confvault audit --app inventory --limit 20"
  )

  @Option(help: "Only this app.") var app: String?
  @Option(help: "How many entries (the newest).") var limit = 100
  @Flag(help: "Print JSON for machines.") var json = false
  @OptionGroup var storeOptions: StoreOptions

  func run() throws {
    let entries = try storeOptions.vault().store.audit(app: app, limit: limit)
    if json { return try JSONOutput.print(entries) }
    for entry in entries {
      let target = [entry.app, entry.environment].compactMap { $0 }.joined(separator: "/")
      print(
        "\(Timestamp.iso8601(entry.at))  \(entry.author)  \(entry.action)  \(target)"
          + (entry.version.map { "  v\($0)" } ?? "") + "  \(entry.detail)"
          + (entry.archiveSHA256.map { "  archive sha256 \($0)" } ?? ""))
    }
  }
}
