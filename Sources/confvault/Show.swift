import ArgumentParser
import ConfvaultCore

struct Show: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "show",
    abstract: "Show one version: who, when, where from, which environments have it as head.",
    discussion: """
      Example:
        confvault show --app inventory 12
      """
  )

  @OptionGroup var app: AppOption
  @Argument(help: "The version: 12, v12, or an environment's name for its head.") var version: VersionReference
  @Flag(help: "Print JSON for machines.") var json = false
  @OptionGroup var storeOptions: StoreOptions

  func run() async throws {
    let service = try storeOptions.readingService()
    let number = try await version.number(app: app.app, service: service, logger: storeOptions.logger)
    let detail = try await service.show(app: app.app, number: number, logger: storeOptions.logger)
    if json { return try JSONOutput.print(detail) }
    let (version, status, heads) = (detail.version, detail.status, detail.headOf)
    print("version      v\(version.number) of \(version.app), made in \(safe(version.environment))")
    print("author       \(safe(version.author))")
    print("created      \(Timestamp.iso8601(version.createdAt))")
    print("comment      \(version.comment.isEmpty ? "-" : safe(version.comment))")
    print("origin       \(version.origin.rawValue)" + (version.restoredFrom.map { ", restored from v\($0)" } ?? ""))
    if let imported = version.importedFrom {
      let what = [imported.app, imported.environment].compactMap { $0 }.map(safe).joined(separator: "/")
      print(
        "imported     archive sha256 \(imported.archiveSHA256)"
          + (what.isEmpty ? " (plain tar)" : ", manifest: \(what)") + (imported.version.map { " v\($0)" } ?? ""))
    }
    print("parent       \(version.parent.map { "v\($0)" } ?? "-")")
    print("status       \(status.rawValue)" + (version.syncedAt.map { ", synced \(Timestamp.iso8601($0))" } ?? ""))
    print("backup       \(version.backup ? "yes (pinned)" : "no")")
    print("head of      \(heads.isEmpty ? "-" : heads.joined(separator: ", "))")
    print("files        \(version.fileCount), \(ByteCount.format(version.totalSize))")
    print("tree         \(version.treeDigest)")
  }
}
