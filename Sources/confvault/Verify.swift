import ArgumentParser
import ConfvaultCore

struct Verify: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Check an archive in full: every rule, every size and SHA-256.",
    discussion: """
      Prints `OK <treeDigest> <files> files <bytes> bytes` and exits 0, or the reason and exits 65.
      Example: confvault verify backup.tar.zst
      """
  )

  @Argument(help: "The archive, or - for standard input.")
  var archive: String

  @OptionGroup var reading: ArchiveReadingOptions

  func run() async throws {
    let contents = try reading.reader.read(from: ArchiveSource(argument: archive))
    print("OK \(contents.treeDigest) \(contents.files.count) files \(contents.totalSize) bytes")
  }
}
