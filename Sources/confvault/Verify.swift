import ArgumentParser
import ConfvaultCore

struct Verify: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "verify",
    abstract: "Check an archive in full: every rule, every size and SHA-256.",
    discussion: """
      Prints `OK <treeDigest> <files> files <bytes> bytes` and exits 0, or the reason and exits 65.
      Example:
        confvault verify backup.tar.zst
      """
  )

  @Argument(help: "The archive, or - for standard input.")
  var archive: String

  @OptionGroup var reading: ArchiveReadingOptions
  @Flag(help: "Print JSON for machines.") var json = false
  @OptionGroup var output: OutputOptions

  /// What `verify --json` prints for an archive that passed every check.
  struct VerifyJSON: Encodable {
    var ok = true
    var treeDigest: TreeDigest
    var fileCount: Int
    var totalSize: Int64
    var compression: Compression
    var archiveSHA256: SHA256Hex
  }

  func run() async throws {
    let contents = try await ProgressDisplay.run("verifying", quiet: output.quiet || json) {
      try reading.reader.read(from: ArchiveSource(argument: archive))
    }
    if json {
      return try JSONOutput.print(
        VerifyJSON(
          treeDigest: contents.treeDigest, fileCount: contents.files.count, totalSize: contents.totalSize,
          compression: contents.compression, archiveSHA256: contents.archiveSHA256))
    }
    output.say("OK \(contents.treeDigest) \(contents.files.count) files \(contents.totalSize) bytes")
  }
}
