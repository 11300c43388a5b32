import ArgumentParser
import ConfvaultCore
import Foundation

struct Inspect: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "inspect",
    abstract: "Show an archive's manifest and files, after checking it in full.",
    discussion: """
      Example:
        confvault inspect production.tar.gz --json
      """
  )

  @Argument(help: "The archive, or - for standard input.")
  var archive: String

  @Flag(help: "Print JSON for machines.")
  var json = false

  @OptionGroup var reading: ArchiveReadingOptions

  func run() async throws {
    let contents = try reading.reader.read(from: ArchiveSource(argument: archive))
    if json {
      try JSONOutput.print(Report(contents))
      return
    }
    let manifest = contents.manifest
    print("archive      \(ArchiveSource(argument: archive).displayName)")
    print(
      "             \(contents.compression), \(ByteCount.format(contents.archiveBytes)), sha256 \(contents.archiveSHA256)"
    )
    if let manifest {
      print("format       \(safe(manifest.format)) \(manifest.formatVersion), by \(safe(manifest.generator))")
      print("app          \(manifest.app.map(safe) ?? "-")")
      print("environment  \(manifest.environment.map(safe) ?? "-")")
      if let version = manifest.version {
        print(
          "version      \(version.number) by \(safe(version.author)) at \(Timestamp.iso8601(version.createdAt)) (\(safe(version.origin)))"
        )
        if !version.comment.isEmpty { print("comment      \(safe(version.comment))") }
        print("synced       \(version.syncedAt.map(Timestamp.iso8601) ?? "never")")
      } else {
        print("version      - (packed from a folder)")
      }
    } else {
      print("format       plain tar" + (contents.strippedFolder.map { ", top folder `\(safe($0))/` stripped" } ?? ""))
    }
    print("files        \(contents.files.count), \(ByteCount.format(contents.totalSize))")
    print("tree         \(contents.treeDigest)")
    print("")
    let width = String(contents.files.map(\.size).max() ?? 0).count
    for file in contents.files {
      let size = String(file.size)
      print(
        "  \(file.mode.rawValue)  \(String(repeating: " ", count: width - size.count))\(size)  \(safe(file.path))")
    }
  }

  /// What `inspect --json` prints: the archive's own facts beside its manifest.
  struct Report: Encodable {
    var archiveSHA256: SHA256Hex
    var archiveBytes: Int64
    var compression: Compression
    var plain: Bool
    @ExplicitNull var strippedFolder: String?
    @ExplicitNull var manifest: Manifest?
    var treeDigest: TreeDigest
    var fileCount: Int
    var totalSize: Int64
    var files: [ManifestFile]

    init(_ contents: ArchiveContents) {
      archiveSHA256 = contents.archiveSHA256
      archiveBytes = contents.archiveBytes
      compression = contents.compression
      plain = contents.manifest == nil
      strippedFolder = contents.strippedFolder
      manifest = contents.manifest
      treeDigest = contents.treeDigest
      fileCount = contents.files.count
      totalSize = contents.totalSize
      files = contents.files
    }
  }
}
